#include "reference/io/llama2c.h"

#include <cstring>

#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "tests/common/model_files.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// shared/models/README.md
constexpr const char* kStoriesSha256 = "9414d5a285453a7eab631713d171753232c978f6f97654211469aff8be93c8d6";

// The float32 at float index `i` after the header, read straight from the bytes.
double raw_float(const std::string& bytes, std::size_t i) {
  float f;
  std::memcpy(&f, bytes.data() + 28 + 4 * i, 4);
  return f;
}

TEST(Llama2c, Stories260KHeaderAndConventions) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const Model m = load_model(*path);
  const ModelConfig& c = m.config;
  EXPECT_EQ(c.arch, Arch::llama);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab, 512);
  EXPECT_EQ(c.max_seq, 512);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.rope, RopeStyle::interleaved);
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_TRUE(c.tied_classifier);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(m.sha256, kStoriesSha256);
  EXPECT_EQ(m.source, *path);
  EXPECT_TRUE(m.classifier.same_view(m.embedding));  // the embedding itself, not a copy
}

TEST(Llama2c, Stories260KSpotWeightsMatchRawBytes) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const Model m = load_model(*path);
  const std::string bytes = test::read_bytes(*path);
  // Float offsets from the README layout with dim 64, hidden 172, L 5, kv_dim 32, vocab 512.
  const std::size_t D = 64, H = 172, L = 5, KV = 32, V = 512;
  const std::size_t emb = 0, rms_att = emb + V * D, wq = rms_att + L * D, wk = wq + L * D * D;
  const std::size_t wv = wk + L * KV * D, wo = wv + L * KV * D, rms_ffn = wo + L * D * D;
  const std::size_t w1 = rms_ffn + L * D, w2 = w1 + L * H * D, w3 = w2 + L * D * H, rms_final = w3 + L * H * D;
  EXPECT_EQ(m.embedding.at(3, 5), raw_float(bytes, emb + 3 * D + 5));
  EXPECT_EQ(m.embedding.at(511, 63), raw_float(bytes, emb + 511 * D + 63));
  EXPECT_EQ(m.layers[1].attn_norm[7], raw_float(bytes, rms_att + 1 * D + 7));
  EXPECT_EQ(m.layers[0].wq.at(10, 20), raw_float(bytes, wq + 10 * D + 20));
  EXPECT_EQ(m.layers[2].wk.at(31, 1), raw_float(bytes, wk + 2 * KV * D + 31 * D + 1));
  EXPECT_EQ(m.layers[3].wv.at(4, 60), raw_float(bytes, wv + 3 * KV * D + 4 * D + 60));
  EXPECT_EQ(m.layers[4].wo.at(63, 0), raw_float(bytes, wo + 4 * D * D + 63 * D));
  EXPECT_EQ(m.layers[4].ffn_norm[0], raw_float(bytes, rms_ffn + 4 * D));
  EXPECT_EQ(m.layers[1].w1.at(171, 2), raw_float(bytes, w1 + 1 * H * D + 171 * D + 2));
  EXPECT_EQ(m.layers[2].w2.at(5, 170), raw_float(bytes, w2 + 2 * D * H + 5 * H + 170));
  EXPECT_EQ(m.layers[3].w3.at(100, 33), raw_float(bytes, w3 + 3 * H * D + 100 * D + 33));
  EXPECT_EQ(m.final_norm[63], raw_float(bytes, rms_final + 63));
  // Gross check: a trained norm is not all zeros.
  EXPECT_NE(m.final_norm[63], 0.0);
}

TEST(Llama2c, SyntheticRoundTripTiedAndUntied) {
  const std::string dir = test::scratch_dir("llama2c_roundtrip");
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    SCOPED_TRACE(test::seed_trace());
    const Model m = make_synthetic_model(test::tiny_llama2c_config(tied), test::test_seed());
    const std::string path = dir + (tied ? "/tied.bin" : "/untied.bin");
    test::write_bytes(path, test::encode_llama2c(m));
    const Model back = read_llama2c(path);
    test::expect_same_model(m, back);
    EXPECT_EQ(back.config.tied_classifier, tied);
    EXPECT_EQ(read_llama2c_config(path).tied_classifier, tied);
  }
}

TEST(Llama2c, FileSizeFollowsHeader) {
  const ModelConfig c = test::tiny_llama2c_config(false);
  const Model m = make_synthetic_model(c, test::test_seed());
  EXPECT_EQ(llama2c_file_bytes(c, "x"), test::encode_llama2c(m).size());
}

TEST(Llama2c, HeaderConsistencyIsChecked) {
  const Llama2cHeader good{64, 172, 5, 8, 4, 512, 512};
  EXPECT_NO_THROW(llama2c_config(good, "h"));
  Llama2cHeader h = good;
  h.n_heads = 7;  // 64 % 7 != 0
  EXPECT_THROW(llama2c_config(h, "h"), InputError);
  h = good;
  h.n_kv_heads = 3;  // 8 % 3 != 0
  EXPECT_THROW(llama2c_config(h, "h"), InputError);
  h = good;
  h.n_layers = 0;
  EXPECT_THROW(llama2c_config(h, "h"), InputError);
  h = good;
  h.vocab_size = 0;
  EXPECT_THROW(llama2c_config(h, "h"), InputError);
  h = good;
  h.vocab_size = -512;
  EXPECT_FALSE(llama2c_config(h, "h").tied_classifier);
  EXPECT_EQ(llama2c_config(h, "h").vocab, 512);
}

}  // namespace
}  // namespace kvfid::ref
