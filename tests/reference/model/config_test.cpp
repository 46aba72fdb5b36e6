#include "reference/model/config.h"

#include <filesystem>
#include <functional>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// Qwen2.5-7B's published config.json dimensions.
ModelConfig qwen25_7b() {
  ModelConfig c;
  c.arch = Arch::qwen2;
  c.vocab = 152064, c.dim = 3584, c.n_layers = 28, c.n_heads = 28, c.n_kv_heads = 4, c.head_dim = 128;
  c.hidden = 18944, c.max_seq = 131072, c.rms_norm_eps = 1e-6, c.rope_theta = 1e6;
  c.rope = RopeStyle::rotate_half, c.tied_classifier = false, c.qkv_bias = true;
  return c;
}

TEST(ModelConfig, Qwen25_7BKvCacheIs56KiBPerTokenInFp16) {
  const ModelConfig c = qwen25_7b();
  c.validate("qwen2.5-7b");
  // 2 (K, V) x 28 layers x 4 KV heads x 128 dims x 2 bytes.
  EXPECT_EQ(c.kv_bytes_per_token(16), 57344.0);
  EXPECT_EQ(c.kv_bytes_per_token(16) / 1024, 56.0);
  EXPECT_EQ(c.kv_bytes_per_token(4.5), 57344.0 * 4.5 / 16);
}

// Sizes the dimensions imply are checked in 64 bits: a config whose products wrap an
// int (or int64) is refused naming its source, never loaded with wrong sizes.
void expect_refused(const ModelConfig& c, const std::string& fragment) {
  try {
    c.validate("cfg.json");
    ADD_FAILURE() << "accepted; expected '" << fragment << "'";
  } catch (const InputError& e) {
    EXPECT_EQ(e.source(), "cfg.json");
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, HeadProductsThatOverflowIntAreRefused) {
  ModelConfig c = qwen25_7b();
  c.n_heads = 65536, c.n_kv_heads = 65536, c.head_dim = 65536;  // 2^32: wraps an int to 0
  expect_refused(c, "n_heads x head_dim (65536 x 65536)");
  c = qwen25_7b();
  c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 1 << 30;  // q_dim 2^31 wraps, kv_dim 2^30 does not
  expect_refused(c, "n_heads x head_dim");
}

TEST(ModelConfig, MatricesBeyondTwoToTheFortyElementsAreRefused) {
  ModelConfig c = qwen25_7b();
  c.vocab = 1 << 30, c.dim = 1 << 12;  // 2^42 embedding elements
  expect_refused(c, "vocab x dim");
  c = qwen25_7b();
  c.hidden = 1 << 29;  // 2^29 x 3584 > 2^40
  expect_refused(c, "hidden x dim");
}

TEST(ModelConfig, ParameterCountThatOverflowsInt64IsRefused) {
  // Every matrix at the 2^40 limit or under, but 2^31 - 1 layers of them: ~2^73 parameters.
  ModelConfig c = qwen25_7b();
  c.dim = 1 << 20, c.n_heads = 16, c.n_kv_heads = 16, c.head_dim = 1 << 16, c.hidden = 1 << 20;
  c.vocab = 256, c.n_layers = 2147483647;
  expect_refused(c, "parameter count overflows");
  c.n_layers = 1024;  // 2^10 layers of ~7 x 2^40: fits, and is counted exactly
  c.validate("cfg.json");
  // norms, wq+wk+wv, wo, w1+w2+w3, q/k/v bias (qkv_bias: Qwen2)
  const std::int64_t d = 1 << 20, per_layer = 2 * d + 3 * d * d + d * d + 3 * d * d + 3 * d;
  EXPECT_EQ(c.parameter_count(), 1024 * per_layer + 2 * 256 * d + d);
}

TEST(ModelConfig, Qwen25_7BParameterCountIsTheSumOfItsTensors) {
  // The tensors Qwen2.5-7B ships, shape by shape, summed without the config formula.
  const std::int64_t d = 3584, kv = 4 * 128, hid = 18944, vocab = 152064;
  const std::int64_t per_layer = (d * d + d)      // q_proj weight + bias
                                 + 2 * (kv * d + kv)  // k_proj, v_proj weight + bias
                                 + d * d              // o_proj
                                 + 2 * hid * d + d * hid  // gate, up, down
                                 + 2 * d;             // input and post-attention norms
  const std::int64_t total = vocab * d + 28 * per_layer + d + vocab * d;  // embed, layers, norm, lm_head
  EXPECT_EQ(qwen25_7b().parameter_count(), total);
}

// Latent attention's dimensions: each inconsistent one refused by name; the parameter
// count is the sum of the tensors a synthetic tiny-mla holds (both query forms).
TEST(ModelConfig, LatentAttentionIsValidatedAndCounted) {
  const ModelConfig mla = synthetic_shape("tiny-mla");
  EXPECT_NO_THROW(mla.validate("t"));
  for (const int q_lora : {24, 0}) {
    ModelConfig c = mla;
    c.mla.q_lora_rank = q_lora;
    const Model m = make_synthetic_model(c, 1);
    std::int64_t n = std::int64_t(m.embedding.rows) * m.embedding.cols + m.classifier.rows * std::int64_t(m.classifier.cols) +
                     std::int64_t(m.final_norm.size());
    for (const LayerWeights& w : m.layers) {
      for (const Matrix* x : {&w.wq, &w.wk, &w.wv, &w.wq_a, &w.wkv_a, &w.wkv_b, &w.wo, &w.w1, &w.w2, &w.w3})
        n += std::int64_t(x->rows) * x->cols;
      for (const auto* v : {&w.attn_norm, &w.ffn_norm, &w.q_a_norm, &w.kv_a_norm}) n += std::int64_t(v->size());
    }
    EXPECT_EQ(c.parameter_count(), n) << "q_lora_rank " << q_lora;
  }
  EXPECT_EQ(mla.cache_values_per_token(), 32 + 8);
  EXPECT_EQ(mla.kv_bytes_per_token(16), 2 * 40 * 2.0);
  struct Bad {
    std::function<void(ModelConfig&)> change;
    const char* named;
  };
  for (const Bad& b : {Bad{[](ModelConfig& c) { c.arch = Arch::llama; }, "goes with deepseek2"},
                       Bad{[](ModelConfig& c) { c.mla = {}; }, "goes with deepseek2"},
                       Bad{[](ModelConfig& c) { c.n_kv_heads = 2; }, "one key head per query head"},
                       Bad{[](ModelConfig& c) { c.head_dim = 8; }, "qk_nope_head_dim"},
                       Bad{[](ModelConfig& c) { c.mla.rope_dim = 7, c.head_dim = 23; }, "qk_rope_head_dim 7 is odd"},
                       Bad{[](ModelConfig& c) { c.mla.v_head_dim = 0; }, "v_head_dim"},
                       Bad{[](ModelConfig& c) { c.mla.q_lora_rank = -1; }, "q_lora_rank"},
                       Bad{[](ModelConfig& c) { c.qk_norm = true; }, "q/k norms"},
                       Bad{[](ModelConfig& c) { c.sliding_window = 4; }, "sliding window"},
                       Bad{[](ModelConfig& c) { c.mla.kv_lora_rank = std::numeric_limits<int>::max() - 4; },
                           "kv_lora_rank + qk_rope_head_dim exceeds"}}) {
    ModelConfig bad = mla;
    b.change(bad);
    try {
      bad.validate("config.json");
      ADD_FAILURE() << b.named << ": accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(b.named), std::string::npos) << e.what();
    }
  }
}

// Gemma 2's constants the engine rounds to FP32 (the embed scale, 1/sqrt of the score
// scale, the caps) must stay finite and normal there: 0 (off, where allowed) or in
// [1e-30, 1e30]; each refusal names the field.
TEST(ModelConfig, Gemma2ConstantsOutsideFp32sRangeAreRefused) {
  ModelConfig c = qwen25_7b();
  c.qkv_bias = false;
  apply_gemma2(c, 256, 50, 30);
  EXPECT_NO_THROW(c.validate("t"));
  // The post-norms add two [dim] gains a layer to the count.
  ModelConfig llama = c;
  llama.sandwich_norms = false;
  EXPECT_EQ(c.parameter_count() - llama.parameter_count(), 28 * 2 * std::int64_t(c.dim));
  struct Bad {
    double ModelConfig::*field;
    double value;
    const char* name;
  };
  for (const Bad& b : {Bad{&ModelConfig::embed_scale, 0, "embedding scale"}, Bad{&ModelConfig::embed_scale, 1e31, "embedding scale"},
                       Bad{&ModelConfig::query_scale_dim, 1e-300, "query_pre_attn_scalar"},
                       Bad{&ModelConfig::attn_softcap, -1, "attention soft-cap"},
                       Bad{&ModelConfig::final_softcap, 1e-31, "final logit soft-cap"},
                       Bad{&ModelConfig::attn_softcap, std::numeric_limits<double>::infinity(), "attention soft-cap"}}) {
    ModelConfig bad = c;
    bad.*b.field = b.value;
    try {
      bad.validate("config.json");
      ADD_FAILURE() << b.name << " = " << b.value << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(b.name), std::string::npos) << e.what();
    }
  }
}

TEST(ModelConfig, Stories260KParameterCountIsItsFloatsWithoutFreqCis) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const ModelConfig c = load_model_config(*path);
  const std::int64_t floats = std::int64_t(std::filesystem::file_size(*path) - 28) / 4;
  const std::int64_t freq_cis = std::int64_t(c.max_seq) * c.head_dim;  // real + imag, head_dim/2 each
  EXPECT_EQ(c.parameter_count(), floats - freq_cis);
}

}  // namespace
}  // namespace kvfid::ref
