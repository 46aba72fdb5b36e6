// GGUF models (reference/io/gguf.h, gguf_model.h), written by the tests' own writer
// from the published specification (tests/common/gguf_writer.h):
//  * stories260K through GGUF is the llama2.c model: the same golden byte for byte (the
//    file's f32 epsilon is the only difference a GGUF can carry, so the llama2.c model
//    is given that epsilon);
//  * Q8_0 and Q4_0 tensors decode to exactly the weights the registry's codecs give,
//    so the golden of a GGUF in Q8_0 is the golden of the model stored in Q8_0;
//  * BF16/F16 qwen2 files with biases load the stored values and rotate halves;
//  * every prefix of a valid file, and files that break a rule, are refused with
//    InputError naming the file.
#include "reference/io/gguf.h"

#include <cstring>
#include <filesystem>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"
#include "reference/golden/golden_io.h"
#include "reference/io/gguf_model.h"
#include "reference/io/load_model.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/golden_forward.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "reference/util/input_error.h"
#include "tests/common/gguf_model_file.h"
#include "tests/common/gguf_writer.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

using test::GgufWriter;
using test::gguf_of;

// A qwen2 shape whose every matrix row is whole blocks of 32 (Q8_0, Q4_0), GQA 2:1.
ModelConfig block_shape(int layers = 2) {
  ModelConfig c = synthetic_shape("tiny-qwen2");
  c.dim = 64, c.hidden = 96, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.n_layers = layers, c.vocab = 96;
  c.rms_norm_eps = double(float(1e-6));  // GGUF holds it as f32
  c.validate("block_shape");
  return c;
}

std::string write(const std::string& name, const std::string& bytes) {
  const std::string path = test::scratch_dir("gguf") + "/" + name;
  test::write_bytes(path, bytes);
  return path;
}

GoldenOptions golden_options() {
  GoldenOptions o;
  o.threads = 2;
  return o;
}

void expect_same_golden(const Model& a, const Model& b, const std::vector<int>& tokens) {
  EXPECT_TRUE(encode_taps_f64(compute_golden(a, tokens, golden_options()).taps) ==
              encode_taps_f64(compute_golden(b, tokens, golden_options()).taps));
}

TEST(Gguf, Stories260KThroughGgufIsTheLlama2cModel) {
  const auto stories = test::stories260k_path();
  if (!stories) GTEST_SKIP() << test::kStoriesMissing;
  Model llama2c = load_model(*stories);
  const std::string path = write("stories260K.gguf", gguf_of(llama2c, "llama", GgufWriter::kF32));
  const Model gguf = load_model(path);
  EXPECT_EQ(gguf.config.rope, RopeStyle::interleaved);
  EXPECT_TRUE(gguf.config.tied_classifier);
  EXPECT_EQ(gguf.config.rms_norm_eps, double(float(1e-5)));
  // llama2.c's checkpoint has no epsilon (run.c's 1e-5f); the file carries its f32.
  llama2c.config.rms_norm_eps = gguf.config.rms_norm_eps;
  expect_same_golden(gguf, llama2c, {1, 78, 98, 51, 84, 5, 16, 48});
}

TEST(Gguf, BlockFormatsDecodeToTheStoredModelsWeights) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(block_shape(), test::test_seed());
  for (const auto& [type, format] : {std::pair{GgufWriter::kQ8_0, "q8_0"}, std::pair{GgufWriter::kQ4_0, "q4_0"}}) {
    SCOPED_TRACE(format);
    const Model gguf = load_model(write(std::string(format) + ".gguf", gguf_of(model, "qwen2", type)));
    const Model stored = stored_model(model, weight_format_from_string(format, "test"));
    EXPECT_EQ(gguf.embedding.values(), stored.embedding.values());
    EXPECT_EQ(gguf.layers[0].wq.values(), stored.layers[0].wq.values());
    EXPECT_EQ(gguf.layers[0].w2.values(), stored.layers[0].w2.values());
    EXPECT_EQ(gguf.layers[0].bq, stored.layers[0].bq);
    expect_same_golden(gguf, stored, {3, 17, 0, 31, 9});
  }
}

TEST(Gguf, HalfPrecisionQwen2LoadsTheStoredValues) {
  SCOPED_TRACE(test::seed_trace());
  const ModelConfig c = synthetic_shape("tiny-qwen2");
  for (const auto& [type, precision] : {std::pair{GgufWriter::kBF16, SynthPrecision::bf16}, std::pair{GgufWriter::kF16, SynthPrecision::f16}}) {
    const Model model = make_synthetic_model(c, test::test_seed(), {.precision = precision});
    const Model gguf = load_model(write("half.gguf", gguf_of(model, "qwen2", type)));
    EXPECT_EQ(gguf.config.rope, RopeStyle::rotate_half);
    EXPECT_TRUE(gguf.config.qkv_bias);
    EXPECT_EQ(gguf.config.n_kv_heads, c.n_kv_heads);
    EXPECT_EQ(gguf.layers[0].wk.values(), model.layers[0].wk.values());  // the synthetic values are in the format
    EXPECT_EQ(gguf.layers[0].w1.stored_type(), type == GgufWriter::kBF16 ? WeightType::bf16 : WeightType::f16);
    EXPECT_EQ(gguf.classifier.values(), model.classifier.values());
  }
}

// Qwen3 as llama.cpp stores it (arch qwen3, blk.N.attn_q_norm / attn_k_norm, key_length
// wider than embedding_length / head_count): the committed fixture's model, value for value.
TEST(Gguf, Qwen3KeepsItsQkNormsAndHeadWidth) {
  const Model hf = load_model(test::fixtures_dir() + "/tiny-qwen3");
  Model gguf = load_model(write("qwen3.gguf", gguf_of(hf, "qwen3", GgufWriter::kBF16)));
  EXPECT_EQ(gguf.config.arch, Arch::qwen3);
  EXPECT_TRUE(gguf.config.qk_norm);
  EXPECT_EQ(gguf.config.head_dim, 32);
  EXPECT_EQ(gguf.config.rope, RopeStyle::rotate_half);
  EXPECT_EQ(gguf.config.rms_norm_eps, double(float(hf.config.rms_norm_eps)));  // GGUF stores it as f32
  gguf.config.rms_norm_eps = hf.config.rms_norm_eps;
  test::expect_same_model(hf, gguf);
}

// Every cut of a valid file is refused (never read past its end, never crashes), and so
// are files that break the specification or ask for what kvfid does not model.
TEST(Gguf, TruncationsAndBrokenFilesAreRefused) {
  const ModelConfig c = block_shape(1);
  const std::string good = gguf_of(make_synthetic_model(c, 7), "qwen2", GgufWriter::kQ8_0);
  ASSERT_NO_THROW(read_gguf_model(write("good.gguf", good)));
  const std::string path = test::scratch_dir("gguf_cut") + "/cut.gguf";
  for (std::size_t n = 0; n < good.size(); n += n < 2048 ? 3 : 997) {
    test::write_bytes(path, good.substr(0, n));
    EXPECT_THROW(read_gguf_model(path), InputError) << n << " bytes";
  }
  auto refused = [&](std::string bytes, const std::string& problem) {
    const std::string p = write("broken.gguf", bytes);
    try {
      read_gguf_model(p);
      ADD_FAILURE() << "accepted: " << problem;
    } catch (const InputError& e) {
      EXPECT_EQ(e.source(), p);
      EXPECT_NE(e.problem().find(problem), std::string::npos) << e.what();
    }
  };
  std::string v2 = good;
  v2[4] = 2;
  refused(v2, "version 2");
  std::string huge = good;
  huge[8] = char(0xff), huge[15] = char(0x7f);  // tensor count near 2^63
  refused(huge, "tensor infos cannot fit");
  GgufWriter w;
  w.str("general.architecture", "gemma");
  refused(w.bytes(), "architecture 'gemma' is not supported");
  Model m = make_synthetic_model(c, 7);
  {
    GgufWriter scaled;  // a llama with rope scaling
    scaled.str("general.architecture", "llama");
    scaled.str("llama.rope.scaling.type", "yarn");
    refused(scaled.bytes(), "rope scaling 'yarn'");
    GgufWriter llama3;  // Llama 3's scaling as llama.cpp converts it: a tensor of factors
    llama3.str("general.architecture", "llama");
    llama3.tensor("rope_freqs.weight", {8}, GgufWriter::kF32, std::string(32, '\0'));
    refused(llama3.bytes(), "tensor 'rope_freqs.weight' (Llama 3 RoPE scaling factors) is not supported");
  }
  std::string extra = gguf_of(m, "qwen2", GgufWriter::kF32);
  // Rename a tensor to one kvfid has no place for (same length keeps the layout).
  const std::size_t at = extra.find("blk.0.ffn_up.weight");
  ASSERT_NE(at, std::string::npos);
  extra.replace(at, 19, "blk.0.ffn_xx.weight");
  refused(extra, "tensor 'blk.0.ffn_up.weight' is missing");
}

TEST(Gguf, NotAGgufFileIsNotReadAsOne) {
  EXPECT_FALSE(is_gguf_file(write("short", "GGU")));
  EXPECT_TRUE(is_gguf_file(write("magic", "GGUF....")));
}

}  // namespace
}  // namespace kvfid::ref
