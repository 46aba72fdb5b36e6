// The streamed HF writer writes the bytes write_hf_model writes for the same values,
// whatever the thread count and however small its chunks, and leaves nothing behind
// when the producer fails.
#include <filesystem>
#include <stdexcept>

#include <gtest/gtest.h>

#include "reference/io/hf.h"
#include "reference/io/hf_stream.h"
#include "reference/util/input_error.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

namespace fs = std::filesystem;

HfRowSource source_of(const SyntheticWeights& g) {
  return [&g](const HfTensorSlot& s, std::int64_t begin, std::int64_t end, double* out) {
    g.rows(s.role, s.layer, begin, end, out);
  };
}

struct Case {
  const char* shape;
  SynthPrecision precision;
  FloatFormat storage;
};

TEST(HfStream, SameBytesAsWriteHfModelForAnyThreadCount) {
  SCOPED_TRACE(test::seed_trace());
  const std::string dir = test::scratch_dir("hf_stream_bytes");
  for (const Case& c : {Case{"tiny-llama", SynthPrecision::f32, FloatFormat::f32},
                        Case{"tiny-qwen2", SynthPrecision::bf16, FloatFormat::bf16},
                        Case{"tiny-mqa", SynthPrecision::f16, FloatFormat::f16},
                        Case{"tiny-mla", SynthPrecision::bf16, FloatFormat::bf16}}) {
    SCOPED_TRACE(c.shape);
    const ModelConfig config = synthetic_shape(c.shape);
    const SynthOptions options{.precision = c.precision};
    write_hf_model(dir + "/whole", make_synthetic_model(config, test::test_seed(), options), c.storage);
    const SyntheticWeights g(config, test::test_seed(), options);
    for (int threads : {1, 3}) {
      const std::string out = dir + "/streamed" + std::to_string(threads);
      write_hf_streamed(out, config, c.storage, source_of(g), {.threads = threads});
      for (const char* file : {kHfConfigFile, kHfWeightsFile})
        EXPECT_TRUE(test::read_bytes(out + "/" + file) == test::read_bytes(dir + "/whole/" + file)) << file << threads;
    }
    EXPECT_EQ(hf_folder_bytes(config, c.storage),
              fs::file_size(dir + "/whole/" + kHfWeightsFile) + fs::file_size(dir + "/whole/" + kHfConfigFile));
  }
}

TEST(HfStream, LayoutFollowsTheConfig) {
  const ModelConfig q = synthetic_shape("tiny-qwen2"), m = synthetic_shape("tiny-mqa");
  // embedding + 2 layers of 9 (+3 biases) + final norm (+ lm_head when untied)
  EXPECT_EQ(hf_tensor_layout(q).size(), 1u + 2u * 12u + 1u + 1u);
  EXPECT_EQ(hf_tensor_layout(m).size(), 1u + 2u * 9u + 1u);
  EXPECT_EQ(hf_tensor_layout(q).back().name, "lm_head.weight");
  EXPECT_EQ(hf_tensor_layout(m).back().name, "model.norm.weight");
}

TEST(HfStream, AFailingProducerLeavesNothing) {
  const std::string dir = test::scratch_dir("hf_stream_fail");
  const ModelConfig config = synthetic_shape("tiny-llama");
  const HfRowSource failing = [](const HfTensorSlot& s, std::int64_t, std::int64_t, double*) {
    if (s.layer == 1) throw std::runtime_error("producer failed");
  };
  EXPECT_THROW(write_hf_streamed(dir + "/m", config, FloatFormat::f32,
                                 [&](const HfTensorSlot& s, std::int64_t b, std::int64_t e, double* out) {
                                   std::fill(out, out + (e - b) * s.cols(), 0.5);
                                   failing(s, b, e, out);
                                 }),
               std::runtime_error);
  EXPECT_TRUE(fs::is_empty(dir)) << "a partial folder or temporary was left";
}

TEST(HfStream, AValueTheStorageCannotHoldIsALogicError) {
  const std::string dir = test::scratch_dir("hf_stream_inexact");
  EXPECT_THROW(write_hf_streamed(dir + "/m", synthetic_shape("tiny-llama"), FloatFormat::bf16,
                                 [](const HfTensorSlot& s, std::int64_t b, std::int64_t e, double* out) {
                                   std::fill(out, out + (e - b) * s.cols(), 1.0 + 0x1p-20);
                                 }),
               std::logic_error);
  EXPECT_TRUE(fs::is_empty(dir));
}

// No disk holds this (a 2^31-token vocabulary 65536 wide, 0.5 PB in BF16): refused up
// front, naming the folder, before anything is created.
TEST(HfStream, RefusesWhatTheDiskCannotHold) {
  const std::string dir = test::scratch_dir("hf_stream_full");
  ModelConfig c = synthetic_shape("tiny-llama");
  c.vocab = 2147483647, c.dim = 65536;
  bool called = false;
  try {
    write_hf_streamed(dir + "/m", c, FloatFormat::bf16, [&](const HfTensorSlot&, std::int64_t, std::int64_t, double*) {
      called = true;
    });
    ADD_FAILURE() << "not refused";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/m"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("of disk, only"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(called);
  EXPECT_TRUE(fs::is_empty(dir));
}

}  // namespace
}  // namespace kvfid::ref
