// Latent attention (DeepSeek's MLA) on the twin: the cache holds the latent rows, in the
// KV policy's format, and the two decode paths (EngineOptions::latent) read the same
// stored rows. Reconstructing keys and values and absorbing the up-projections are the
// same function reassociated, so they share every value up to the attention's sums and
// differ there in their roundings only; both are gated against the golden by
// CheckAllGoldens (tools/kvfid) and the error-bound property.
#include <cmath>
#include <cstdio>
#include <cstring>

#include <gtest/gtest.h>

#include "cuda/engine/engine.h"
#include "cuda/engine/engine_forward.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

EngineOptions twin(const std::string& kv, LatentPath path) {
  EngineOptions o;
  o.backend = Backend::twin;
  o.kv = test::kv_spec(kv);
  o.latent = path;
  return o;
}

const TapTensor& tap(const TapSet& taps, const std::string& name) {
  const TapTensor* t = find_tap(taps, name);
  if (!t) throw std::logic_error("no tap " + name);
  return *t;
}

bool same_bits(const TapTensor& a, const TapTensor& b) {
  return a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(double)) == 0;
}

// Up to the attention the paths compute the same values (the cache rows, the queries,
// the keys and values the taps reconstruct); from its sums on they differ, each within
// the gate (measured on this synthetic tiny-mla, 64 tokens, f16 cache: layer 0's
// attention outputs differ by at most 1.03e-6 of values up to 2.91, about 4 ulps, and
// the logits by 3.3e-6; kvfid check puts either path 5.1e-4 from the golden in f16).
// The paths' largest difference allowed, in units of 2^-24 of the largest attention
// output: 16 times the 4 measured above. It only says the absorbed path computes the same
// function; how close each path is to the truth is the gate's to judge (CheckAllGoldens).
constexpr double kPathUlps = 64;

TEST(EngineLatent, TheTwoPathsShareTheRowsAndDifferInTheAttentionsSums) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = make_synthetic_model(synthetic_shape("tiny-mla"), test::test_seed());
  const auto tokens = test::prompt_tokens(64, m.config.vocab, 3);
  const TapSet rebuilt = engine_forward(m, tokens, twin("f16", LatentPath::reconstruct));
  const TapSet absorbed = engine_forward(m, tokens, twin("f16", LatentPath::absorb));
  ASSERT_EQ(test::gross_failure(rebuilt), "");
  ASSERT_EQ(test::gross_failure(absorbed), "");
  for (const char* what : {"q", "k", "v"})
    EXPECT_TRUE(same_bits(tap(rebuilt, tap_layer_name(0, what)), tap(absorbed, tap_layer_name(0, what)))) << what;
  const TapTensor &a = tap(rebuilt, tap_layer_name(0, "attn.out")), &b = tap(absorbed, tap_layer_name(0, "attn.out"));
  double differ = 0, largest = 0;
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    differ = std::max(differ, std::fabs(a.values[i] - b.values[i]));
    largest = std::max(largest, std::fabs(a.values[i]));
  }
  double logits = 0;
  const TapTensor &la = tap(rebuilt, "logits"), &lb = tap(absorbed, "logits");
  for (std::size_t i = 0; i < la.values.size(); ++i) logits = std::max(logits, std::fabs(la.values[i] - lb.values[i]));
  std::printf("[latent] reconstruct vs absorb: layer 0 attn.out max |diff| %.3g (of max |value| %.3g), logits %.3g\n",
              differ, largest, logits);
  EXPECT_GT(differ, 0) << "the absorbed path computed the reconstructing one's sums";
  EXPECT_LT(differ, kPathUlps * 0x1p-24 * largest);
}

// The cache holds each token's row once for keys and values, in the policy's format: its
// bytes are the rows' (40 values a token and layer on tiny-mla), and every key's rope
// part -- the stored k_pe, read back -- is a value of that format, while the keys' nope
// parts, computed from the stored latent, are not.
TEST(EngineLatent, TheCacheHoldsTheLatentRowsInItsFormat) {
  const Model m = make_synthetic_model(synthetic_shape("tiny-mla"), test::test_seed());
  const ModelConfig& c = m.config;
  const auto tokens = test::prompt_tokens(12, c.vocab, 9);
  const int lw = c.mla.kv_lora_rank + c.mla.rope_dim, T = int(tokens.size());
  for (const char* kv : {"f16", "bf16", "q8_0"}) {
    SCOPED_TRACE(kv);
    for (LatentPath path : {LatentPath::reconstruct, LatentPath::absorb}) {
      Engine engine(m, twin(kv, path));
      const int seq = engine.add_sequence(T);
      const StepOutput& out = engine.step({{seq, tokens}}, true);
      const quant::FormatInfo& f = quant::format_by_name(kv, "test");
      const CacheValues cache = engine.cache_values(seq, 1);
      EXPECT_EQ(cache.k_bytes, std::size_t(T) * quant::row_block_count(lw, f.block) * f.bytes);
      EXPECT_EQ(cache.v_bytes, 0u);
      ASSERT_EQ(cache.v.size(), std::size_t(T) * c.n_heads * c.v_head_dim());
      if (std::string(kv) == "q8_0") continue;  // its values are a block's scale times an int8
      const MiniFloatSpec fmt = std::string(kv) == "f16" ? kFp16 : kBf16;
      int rope_held = 0, nope_held = 0;
      const std::vector<float>& k = out.layers[1].k;  // [T, n_heads, head_dim]
      for (std::size_t i = 0; i < k.size(); ++i) {
        const bool held = minifloat_round(k[i], fmt) == double(k[i]);
        (int(i % c.head_dim) >= c.nope_dim() ? rope_held : nope_held) += held;
      }
      EXPECT_EQ(rope_held, T * c.n_heads * c.mla.rope_dim);
      EXPECT_LT(nope_held, T * c.n_heads * c.nope_dim() / 4);
    }
  }
}

// What a latent cache cannot hold is refused in one line naming the policy's source.
TEST(EngineLatent, PoliciesALatentCacheCannotTakeAreRefused) {
  const Model m = make_synthetic_model(synthetic_shape("tiny-mla"), test::test_seed());
  for (const char* kv : {"f16+hot=4", "k=q8_0+v=f16", "f16+evict=h2o:4", "q8_0+kivi"}) {
    try {
      Engine engine(m, twin(kv, LatentPath::reconstruct));
      ADD_FAILURE() << kv << " accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("latent (MLA) cache"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kvfid::engine
