#include "reference/util/progress.h"

#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

TEST(Progress, PlainLinesCarryTheCount) {
  std::ostringstream out;
  Progress p("golden", out, false, 0.0);  // a line on every step
  p.add_total(4);
  p.set_stage("attempt 1");
  p.advance();
  p.advance(2);
  EXPECT_NE(out.str().find("golden (attempt 1) 1/4 (25%)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("3/4 (75%)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("ETA"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
}

TEST(Progress, PlainLinesAreThrottled) {
  std::ostringstream out;
  Progress p("golden", out, false, 3600.0);
  p.add_total(3);
  p.advance(3);
  EXPECT_EQ(out.str(), "");
  p.finish();
  EXPECT_NE(out.str().find("3/3 (100%)"), std::string::npos) << out.str();
  p.finish();  // idempotent
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

TEST(Progress, InteractiveRedrawsABar) {
  std::ostringstream out;
  Progress p("golden", out, true, 3600.0);
  p.add_total(2);
  p.advance();
  EXPECT_NE(out.str().find("\r"), std::string::npos);
  EXPECT_NE(out.str().find("[###############               ] 1/2"), std::string::npos) << out.str();
  p.advance();
  p.finish();
  EXPECT_EQ(out.str().back(), '\n');
}

}  // namespace
}  // namespace kvfid::ref
