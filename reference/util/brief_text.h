#pragma once
// A user's value quoted in a one-line error message: never longer than a screen line,
// never a second line, however large or strange the value (a million-digit token, a
// megabyte JSON string, bytes that are not text).
#include <cstddef>
#include <string>
#include <string_view>

namespace kvfid::ref {

// Enough to recognise a value in an error line; the rest is summarised by its length.
inline constexpr std::size_t kBriefTextChars = 40;

// Printable ASCII is kept; every other byte becomes \xNN, so the result is one line.
// Longer than max_chars: the first max_chars, then "... (N bytes)".
std::string brief_text(std::string_view text, std::size_t max_chars = kBriefTextChars);

}  // namespace kvfid::ref
