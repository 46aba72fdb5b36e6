#include "reference/util/brief_text.h"

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

TEST(BriefText, ShortPrintableTextIsKeptAsIs) { EXPECT_EQ(brief_text("12ab-x"), "12ab-x"); }

TEST(BriefText, LongTextIsCutWithItsLength) {
  const std::string digits(1'000'000, '7');  // a million-digit token
  std::string cut(kBriefTextChars, '7');
  cut += "... (1000000 bytes)";  // appended, not a temporary's operator+ (GCC 12's false -Warray-bounds)
  EXPECT_EQ(brief_text(digits), cut);
  EXPECT_EQ(brief_text("abcdef", 3), "abc... (6 bytes)");
}

TEST(BriefText, ControlAndNonAsciiBytesAreEscapedSoTheResultIsOneLine) {
  EXPECT_EQ(brief_text(std::string("a\nb\x7f\xff\0c", 7)), "a\\x0ab\\x7f\\xff\\x00c");
}

}  // namespace
}  // namespace kvfid::ref
