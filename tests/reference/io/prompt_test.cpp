// Token ids from every source (a prompt file, a --tokens list, a manifest's JSON) obey
// one rule: an integer in [0, 2^31 - 1], refused naming the source and quoted briefly.
#include "reference/io/prompt.h"

#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/util/input_error.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

std::string refusal(const std::function<void()>& read, const std::string& source) {
  try {
    read();
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), source);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(TokenIds, TextListsRefuseNegativesNonIntegersAndValuesAboveIntMax) {
  EXPECT_EQ(parse_token_list("1, 2 3\n# comment 9\n2147483647", "--tokens"), (std::vector<int>{1, 2, 3, 2147483647}));
  for (const std::string bad : {"-1", "1.5", "2147483648", "99999999999999999999", "7x"})
    EXPECT_NE(refusal([&] { parse_token_list("4 " + bad, "--tokens"); }, "--tokens").find("'" + bad + "' at position 1"),
              std::string::npos) << bad;
}

TEST(TokenIds, AMillionDigitTokenIsNotEchoedWhole) {
  const std::string path = test::scratch_dir("prompt_million_digits") + "/p.tokens";
  test::write_bytes(path, "5 " + std::string(1'000'000, '9') + "\n");
  const std::string what = refusal([&] { read_prompt_file(path); }, path);
  EXPECT_NE(what.find("(1000000 bytes)"), std::string::npos) << what.substr(0, 200);
  EXPECT_LT(what.size(), 300u);
}

TEST(TokenIds, JsonListsObeyTheSameRule) {
  EXPECT_EQ(tokens_from_json(nlohmann::json::parse("[0, 5, 2147483647]"), "m.json"), (std::vector<int>{0, 5, 2147483647}));
  // -1 and 2^31 once passed (2^31 read as INT_MIN) and indexed the embedding out of bounds.
  for (const std::string bad : {"-1", "2147483648", "18446744073709551615", "1.5", "\"3\"", "null", "[1]"})
    EXPECT_NE(refusal([&] { tokens_from_json(nlohmann::json::parse("[4, " + bad + "]"), "m.json"); }, "m.json")
                  .find("at position 1 is not a token id"),
              std::string::npos) << bad;
  refusal([] { tokens_from_json(nlohmann::json::parse(R"({"0": 1})"), "m.json"); }, "m.json");
}

TEST(TokenIds, ValidateTokensChecksTheVocabAndBothEnds) {
  ModelConfig c;
  c.vocab = 10, c.max_seq = 3;
  validate_tokens({0, 9}, c, "p");
  EXPECT_NE(refusal([&] { validate_tokens({0, 10}, c, "p"); }, "p").find("out of range for vocab 10"), std::string::npos);
  EXPECT_NE(refusal([&] { validate_tokens({-1}, c, "p"); }, "p").find("token -1 at position 0"), std::string::npos);
  refusal([&] { validate_tokens({}, c, "p"); }, "p");
  refusal([&] { validate_tokens({1, 2, 3, 4}, c, "p"); }, "p");
}

}  // namespace
}  // namespace kvfid::ref
