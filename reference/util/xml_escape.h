#pragma once
// Text safe inside XML 1.0 content and quoted attributes (JUnit reports, SVG plots).
#include <string>
#include <string_view>

namespace kvfid::ref {

// & < > " ' become entities; control characters XML 1.0 cannot carry at all become
// U+FFFD.
std::string xml_escape(std::string_view text);

}  // namespace kvfid::ref
