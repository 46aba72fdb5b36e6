#include <gtest/gtest.h>

#include "reference/io/hf.h"
#include "reference/io/load_model.h"
#include "reference/model/rope_permute.h"
#include "tests/common/model_files.h"
#include "tests/common/run_cli.h"
#include "tests/common/test_env.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

TEST(CmdConvert, Stories260KBecomesTheSameModelWithRotateHalfRope) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const std::string out = test::scratch_dir("convert_stories") + "/hf";
  const auto r = test::run_kvfid({"convert", "--model", *path, "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Model converted = load_model(out);
  EXPECT_EQ(converted.config.rope, RopeStyle::rotate_half);
  test::expect_same_model(permute_to_rotate_half(load_model(*path)), converted);
}

TEST(CmdConvert, HfFolderConvertsToBf16Exactly) {
  SCOPED_TRACE(test::seed_trace());
  const std::string root = test::scratch_dir("convert_bf16");
  const Model m = make_synthetic_model(synthetic_shape("tiny-qwen2"), test::test_seed(),
                                       {.precision = SynthPrecision::bf16});
  write_hf_model(root + "/in", m, FloatFormat::f32);
  const auto r = test::run_kvfid({"convert", "--model", root + "/in", "--out", root + "/out", "--dtype", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(test::read_bytes(root + "/out/config.json").find("\"bfloat16\""), std::string::npos);
  test::expect_same_model(m, load_model(root + "/out"));
}

}  // namespace
}  // namespace kvfid::cli
