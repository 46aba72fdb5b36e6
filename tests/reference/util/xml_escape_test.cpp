#include "reference/util/xml_escape.h"

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

TEST(XmlEscape, CoversTheFiveEntitiesAndControlCharacters) {
  EXPECT_EQ(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(xml_escape("tab\tok\x02"), "tab\tok\xEF\xBF\xBD");
}

}  // namespace
}  // namespace kvfid::ref
