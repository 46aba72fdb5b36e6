// A GGUF model through the whole command line: kvfid info reads its config, kvfid golden
// certifies the exact forward of its Q8_0 weights, and the CPU twin passes kvfid check
// against that golden with the same storage; a file kvfid cannot read exits 2 with one
// line naming it.
#include <gtest/gtest.h>

#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/gguf_model_file.h"
#include "tests/common/gguf_writer.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

TEST(GgufCli, AQ8_0GgufIsCertifiedAndTheTwinPassesItsCheck) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = synthetic_shape("tiny-qwen2");
  c.dim = 64, c.hidden = 96, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.n_layers = 2, c.vocab = 96;
  const std::string dir = test::scratch_dir("gguf_cli");
  const std::string model = dir + "/model.gguf";
  test::write_bytes(model, test::gguf_of(make_synthetic_model(c, test::test_seed()), "qwen2", test::GgufWriter::kQ8_0));
  const auto info = test::run_kvfid({"info", "--model", model});
  ASSERT_EQ(info.exit_code, test::kExitPass) << info.err;
  EXPECT_NE(info.out.find("qwen2"), std::string::npos) << info.out;
  const auto golden = test::run_kvfid({"golden", "--model", model, "--tokens", "3,17,0,31,9", "--out", dir + "/g"});
  ASSERT_EQ(golden.exit_code, test::kExitPass) << golden.err;
  const auto check = test::run_kvfid({"check", "--model", model, "--golden", dir + "/g", "--engine", "twin"});
  EXPECT_EQ(check.exit_code, test::kExitPass) << check.out << check.err;
}

TEST(GgufCli, AnUnsupportedArchitectureExitsTwoNamingTheFile) {
  test::GgufWriter w;
  w.str("general.architecture", "mamba");
  const std::string model = test::scratch_dir("gguf_cli_bad") + "/m.gguf";
  test::write_bytes(model, w.bytes());
  const auto r = test::run_kvfid({"info", "--model", model});
  EXPECT_EQ(r.exit_code, test::kExitBadInput);
  const std::vector<std::string> lines = test::split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(model), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("architecture 'mamba' is not supported"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace kvfid::cli
