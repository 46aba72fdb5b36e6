#include "reference/io/json_input.h"

#include <gtest/gtest.h>

#include "reference/util/input_error.h"

namespace kvfid::ref {
namespace {

std::string nested(int depth, const std::string& open = "[", const std::string& close = "]") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

InputError refusal(const std::string& text) {
  try {
    parse_json_input(text, "f.json", "this file");
  } catch (const InputError& e) {
    return e;
  }
  ADD_FAILURE() << "accepted: " << text.substr(0, 80);
  return InputError("", "");
}

TEST(JsonDepth, CountsBracketsOutsideStringsOnly) {
  EXPECT_EQ(json_depth("1"), 0);
  EXPECT_EQ(json_depth(R"({"a": [1, {"b": []}]})"), 4);
  EXPECT_EQ(json_depth(R"(["[[[[{{{", "\"[[[", "\\"])"), 1);  // escaped quotes and backslashes
  EXPECT_EQ(json_depth(R"([[], [[]], []])"), 3);
}

TEST(JsonDepth, StopsAtTheFirstByteBeyondTheLimit) {
  std::size_t at = 0;
  EXPECT_EQ(json_depth(nested(100'000), &at), kMaxJsonDepth + 1);
  EXPECT_EQ(at, std::size_t(kMaxJsonDepth));
}

TEST(ParseJsonInput, AcceptsTheLimitAndRefusesOneLevelMore) {
  EXPECT_EQ(parse_json_input(nested(kMaxJsonDepth), "f.json", "this file").size(), 1u);
  const InputError e = refusal(nested(kMaxJsonDepth + 1, "{\"k\":", "}"));
  EXPECT_EQ(e.source(), "f.json");
  EXPECT_NE(std::string(e.what()).find("this file nests deeper than 64 levels"), std::string::npos) << e.what();
}

TEST(ParseJsonInput, HundredThousandDeepNestingIsOneLineNotAStackOverflow) {
  for (const auto& [open, close] : {std::pair{"[", "]"}, std::pair{"{\"a\":", "}"}}) {
    const InputError e = refusal(R"({"rope_scaling": )" + nested(100'000, open, close) + "}");
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(ParseJsonInput, SyntaxErrorsQuoteABoundedPrefix) {
  // nlohmann quotes the last token read; here that is a megabyte of digits.
  const InputError e = refusal("[" + std::string(1'000'000, '1') + "x");
  const std::string what = e.what();
  EXPECT_NE(what.find("this file is not valid JSON"), std::string::npos) << what.substr(0, 300);
  EXPECT_LT(what.size(), 400u);
}

TEST(BriefJson, ContainersAreDescribedNotSerialized) {
  EXPECT_EQ(brief_json(nlohmann::json::parse("[1, [2, 3]]")), "an array of 2 elements");
  EXPECT_EQ(brief_json(nlohmann::json::parse(R"({"a": {"b": 1}})")), "an object of 1 members");
  EXPECT_EQ(brief_json(nlohmann::json(-1)), "-1");
  EXPECT_EQ(brief_json(nlohmann::json(std::string(1000, 'q'))), "\"" + std::string(40, 'q') + "... (1000 bytes)\"");
}

}  // namespace
}  // namespace kvfid::ref
