// A golden's manifest is user input: hostile token lists and nesting are refused with
// one line naming manifest.json, before anything indexes a model with them.
#include "reference/golden/golden_io.h"

#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

class GoldenManifest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir("golden_manifest") + "/g";
    write_golden(dir_, {{"logits", {2, 3}, {1, 2, 3, 4, 5, 6}}}, {{"model", "m.bin"}, {"tokens", {1, 2}}});
  }
  std::string manifest() const { return dir_ + "/manifest.json"; }
  std::string refusal(const std::string& manifest_text) {
    test::write_bytes(manifest(), manifest_text);
    try {
      read_golden(dir_);
    } catch (const InputError& e) {
      EXPECT_EQ(e.source(), manifest());
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
      return e.what();
    }
    ADD_FAILURE() << "accepted: " << manifest_text.substr(0, 80);
    return "";
  }
  std::string dir_;
};

TEST_F(GoldenManifest, AWellFormedManifestReadsBack) {
  const Golden g = read_golden(dir_);
  EXPECT_EQ(g.tokens, (std::vector<int>{1, 2}));
  EXPECT_EQ(g.manifest.at("model"), "m.bin");
}

TEST_F(GoldenManifest, TokenIdsOutsideZeroToIntMaxAreRefusedNamingTheManifest) {
  // -1 and 2^31 (read as INT_MIN) once reached the embedding lookup.
  for (const std::string bad : {"-1", "2147483648", "4294967295", "1.0", "\"1\""})
    EXPECT_NE(refusal(R"({"tokens": [3, )" + bad + "]}").find("at position 1 is not a token id"), std::string::npos)
        << bad;
  EXPECT_NE(refusal(R"({"model": "m.bin"})").find("no \"tokens\""), std::string::npos);
  EXPECT_NE(refusal(R"({"tokens": []})").find("no tokens"), std::string::npos);
  EXPECT_NE(refusal(R"({"tokens": "1 2"})").find("not a list of token ids"), std::string::npos);
  EXPECT_NE(refusal("[1, 2]").find("not a JSON object"), std::string::npos);
}

TEST_F(GoldenManifest, DeepNestingIsRefusedBeforeTheTreeIsBuilt) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_NE(refusal(R"({"tokens": [1], "certification": )" + deep + "}").find("this manifest nests deeper than 64 levels"),
            std::string::npos);
}

}  // namespace
}  // namespace kvfid::ref
