// The committed fixtures are exactly what `kvfid fixture` writes today: a change to the
// generator or the HF writer cannot silently leave fixtures/ (and every golden made
// from it) describing a model the code no longer produces.
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct FixtureCase {
  std::string shape;
  std::string seed;
  std::string dtype;
};

// The commands recorded in fixtures/README.md.
const FixtureCase kCommitted[] = {
    {"tiny-llama", "1", "f32"},
    {"tiny-qwen2", "2", "bf16"},
    {"tiny-mqa", "3", "f16"},
};

TEST(CmdFixture, RegeneratesCommittedFixturesByteForByte) {
  for (const auto& c : kCommitted) {
    SCOPED_TRACE(c.shape);
    const std::string out = test::scratch_dir("fixture_" + c.shape) + "/model";
    auto r = test::run_kvfid({"fixture", "--shape", c.shape, "--seed", c.seed, "--dtype", c.dtype, "--out", out});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string committed = test::fixtures_dir() + "/" + c.shape;
    for (const char* file : {"config.json", "model.safetensors"}) {
      const std::string expected = file_bytes(committed + "/" + file);
      ASSERT_FALSE(expected.empty()) << committed << "/" << file << " is missing";
      EXPECT_TRUE(file_bytes(out + "/" + file) == expected) << file << " differs from " << committed;
    }
  }
}

TEST(CmdFixture, UnknownShapeIsBadInput) {
  auto r = test::run_kvfid({"fixture", "--shape", "huge", "--seed", "1", "--out", test::scratch_dir("fx_bad") + "/m"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown shape 'huge'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvfid::cli
