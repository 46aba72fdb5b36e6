#include "reference/io/load_model.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/io/hf.h"
#include "reference/util/input_error.h"
#include "reference/io/sha256.h"
#include "reference/model/rope_permute.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

TEST(LoadModel, FileIsLlama2cFolderIsHf) {
  SCOPED_TRACE(test::seed_trace());
  const std::string dir = test::scratch_dir("load_dispatch");
  const Model m = make_synthetic_model(test::tiny_llama2c_config(true), test::test_seed());
  const std::string bin = dir + "/model.bin";
  const std::string bin_bytes = test::encode_llama2c(m);
  test::write_bytes(bin, bin_bytes);
  const Model from_bin = load_model(bin);
  EXPECT_EQ(from_bin.source, bin);
  EXPECT_EQ(from_bin.sha256, sha256_hex(bin_bytes));
  EXPECT_EQ(from_bin.config.rope, RopeStyle::interleaved);

  const std::string folder = dir + "/hf";
  write_hf_model(folder, permute_to_rotate_half(from_bin), FloatFormat::f32);
  const Model from_hf = load_model(folder);
  EXPECT_EQ(from_hf.source, folder);
  EXPECT_EQ(from_hf.sha256, sha256_hex(test::read_bytes(folder + "/" + kHfWeightsFile)));
  test::expect_same_model(permute_to_rotate_half(from_bin), from_hf);

  EXPECT_EQ(to_json(load_model_config(bin)), to_json(from_bin.config));
  EXPECT_EQ(to_json(load_model_config(folder)), to_json(from_hf.config));
}

// The real model through the HF writer and back: the folder holds exactly the
// permuted in-memory model.
TEST(LoadModel, Stories260KSurvivesConversionToHf) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const Model permuted = permute_to_rotate_half(load_model(*path));
  const std::string folder = test::scratch_dir("load_stories_hf") + "/hf";
  write_hf_model(folder, permuted, FloatFormat::f32);
  test::expect_same_model(permuted, load_model(folder));
}

// What the engine can read in place, from the header alone: the fixtures' one dtype per
// folder; nothing for a llama2.c file (its query and key rows are reordered on load).
TEST(LoadModel, StoredMatrixTypeComesFromTheHeader) {
  EXPECT_EQ(stored_matrix_type(test::fixtures_dir() + "/tiny-qwen2"), WeightType::bf16);
  EXPECT_EQ(stored_matrix_type(test::fixtures_dir() + "/tiny-mqa"), WeightType::f16);
  EXPECT_EQ(stored_matrix_type(test::fixtures_dir() + "/tiny-llama"), WeightType::f32);
  const std::optional<std::string> stories = test::stories260k_path();
  if (stories) {
    EXPECT_EQ(stored_matrix_type(*stories), std::nullopt);
  }
  EXPECT_THROW(stored_matrix_type(test::fixtures_dir() + "/absent"), InputError);
}

TEST(LoadModel, MissingPathIsInputErrorNamingIt) {
  const std::string path = test::scratch_dir("load_missing") + "/nothing-here";
  try {
    load_model(path);
    ADD_FAILURE() << "a missing path was accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), path);
  }
  EXPECT_THROW(load_model_config(path), InputError);
}

}  // namespace
}  // namespace kvfid::ref
