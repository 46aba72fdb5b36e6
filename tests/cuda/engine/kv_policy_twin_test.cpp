// The twin's quantized storage (kv_plan.h, packed_model.cpp): what the KV taps and
// Engine::cache_values hold under each kind of policy, the tiered path against the
// fast path where their values agree, padded row blocks against the reference's store,
// quantized weights, and the construction errors.
#include <cstring>
#include <utility>

#include <gtest/gtest.h>

#include "cuda/common/kv_encode.h"
#include "cuda/engine/engine.h"
#include "cuda/engine/engine_forward.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/kv_store.h"
#include "reference/mp/mp_arith.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using test::bitwise_difference;

// kv_dim 32 (one q8_0 block per token row), 70 tokens: two complete KIVI groups of 32
// and an incomplete one.
constexpr int kTokens = 70;

Model kv_model() {
  return test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed());
}

EngineOptions options(const std::string& kv, const std::string& weights = "f32", int chunk = 0) {
  EngineOptions o;
  o.weights = test::weight_format(weights);
  o.kv = test::kv_spec(kv);
  o.chunk = chunk;
  return o;
}

// One step over the whole prompt; layer 0's taps and cache (layer 0's K and V depend
// only on the weights, not on the cache, so every policy sees the same FP32 K and V).
struct Layer0 {
  std::vector<float> k, v;  // taps [T, kv_dim]
  CacheValues cache;
};

Layer0 layer0(const Model& m, const std::string& kv) {
  Engine e(m, options(kv));
  const int seq = e.add_sequence(kTokens);
  const StepOutput& out = e.step({{seq, test::prompt_tokens(kTokens, m.config.vocab, 3)}}, true);
  return {out.layers[0].k, out.layers[0].v, e.cache_values(seq, 0)};
}

// [T, kv_dim] -> [n_kv_heads, T, head_dim], the cache's order.
std::vector<float> head_major_rows(const std::vector<float>& rows, const ModelConfig& c, int T) {
  std::vector<float> r(rows.size());
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < c.n_kv_heads; ++h)
      for (int d = 0; d < c.head_dim; ++d)
        r[(std::size_t(h) * T + t) * c.head_dim + d] = rows[std::size_t(t) * c.kv_dim() + h * c.head_dim + d];
  return r;
}
std::vector<float> head_major(const std::vector<float>& rows, const ModelConfig& c) {
  return head_major_rows(rows, c, kTokens);
}

// Each 32-element token row through q8_0 (encode, then the FP32 decode).
std::vector<float> q8_rows(const std::vector<float>& x) {
  const quant::FormatInfo& f = quant::format_by_name("q8_0", "test");
  std::vector<float> r(x.size());
  std::vector<std::uint8_t> code(f.bytes);
  for (std::size_t b = 0; b < x.size() / f.block; ++b) {
    f.encode(x.data() + b * f.block, code.data(), {});
    for (int i = 0; i < f.block; ++i) r[b * f.block + i] = f.decode(code.data(), i, {});
  }
  return r;
}

std::vector<float> hot(const std::vector<float>& x) {
  std::vector<float> r(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) r[i] = num::hot_value(x[i]);
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// When every form a query can read holds the FP16 rounding (cold in f16, hot always
// FP16), the tiered path must give the fast f16 path's bits everywhere: the plane
// selection and the FP32 attention over decoded values add nothing.
TEST(KvPolicyTwin, TieredPathEqualsFastPathWhenTheFormsAgree) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = kv_model();
  const auto tokens = test::prompt_tokens(kTokens, m.config.vocab, 5);
  for (int chunk : {0, 1, 9}) {
    const TapSet fast = engine_forward(m, tokens, options("f16", "f32", chunk));
    ASSERT_EQ(test::gross_failure(fast), "");
    for (const char* tiered : {"f16+hot=1", "f16+hot=7", "f16+hot=1000"})
      EXPECT_EQ(bitwise_difference(fast, engine_forward(m, tokens, options(tiered, "f32", chunk))), "")
          << tiered << " chunk " << chunk;
  }
}

TEST(KvPolicyTwin, Q8CacheHoldsEachRowsRoundTrip) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = kv_model();
  const Layer0 f32 = layer0(m, "f32"), q8 = layer0(m, "q8_0");
  EXPECT_TRUE(same_bits(q8.k, q8_rows(f32.k)));
  EXPECT_TRUE(same_bits(q8.v, q8_rows(f32.v)));
  EXPECT_FALSE(same_bits(q8.k, f32.k));  // quantization happened
  EXPECT_TRUE(same_bits(q8.cache.k, head_major(q8.k, m.config)));
  EXPECT_TRUE(same_bits(q8.cache.v, head_major(q8.v, m.config)));
  EXPECT_TRUE(q8.cache.k_hot.empty());
  EXPECT_EQ(q8.cache.k_bytes, std::size_t(kTokens) * 34);  // one 34-byte block per token row
  EXPECT_EQ(q8.cache.v_bytes, std::size_t(kTokens) * 34);
  // The fast path reports its stored values too.
  const Layer0 f16 = layer0(m, "f16");
  EXPECT_TRUE(same_bits(f16.cache.k, head_major(f16.k, m.config)));
  EXPECT_EQ(f16.cache.k_bytes, std::size_t(kTokens) * 32 * 2);
}

// Under a hot window every row's own key is hot (FP16), while the cache's cold form
// is the q8_0 round trip of every token.
TEST(KvPolicyTwin, HotWindowTapsAreFp16AndColdFormStaysQ8) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = kv_model();
  const Layer0 f32 = layer0(m, "f32"), w = layer0(m, "q8_0+hot=4");
  EXPECT_TRUE(same_bits(w.k, hot(f32.k)));
  EXPECT_TRUE(same_bits(w.v, hot(f32.v)));
  EXPECT_TRUE(same_bits(w.cache.k, head_major(q8_rows(f32.k), m.config)));
  EXPECT_TRUE(same_bits(w.cache.v_hot, head_major(hot(f32.v), m.config)));
}

// KIVI: a key group's 32 tokens are encoded per channel when its last token arrives;
// that token's own key is then cold, every other row's own key hot. Values per token.
TEST(KvPolicyTwin, KiviEncodesKeyGroupsPerChannel) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = kv_model();
  const ModelConfig& c = m.config;
  const int kvd = c.kv_dim();
  const Layer0 f32 = layer0(m, "f32"), kivi = layer0(m, "k=q8_0+v=f16+kivi");
  // Expected cold keys: channel ch of group g through q8_0.
  std::vector<float> cold = hot(f32.k);  // the incomplete last group stays hot
  const quant::FormatInfo& f = quant::format_by_name("q8_0", "test");
  std::vector<float> x(32);
  std::vector<std::uint8_t> code(f.bytes);
  for (int g = 0; g < kTokens / 32; ++g)
    for (int ch = 0; ch < kvd; ++ch) {
      for (int i = 0; i < 32; ++i) x[i] = f32.k[std::size_t(g * 32 + i) * kvd + ch];
      f.encode(x.data(), code.data(), {});
      for (int i = 0; i < 32; ++i) cold[std::size_t(g * 32 + i) * kvd + ch] = f.decode(code.data(), i, {});
    }
  EXPECT_TRUE(same_bits(kivi.cache.k, head_major(cold, c)));
  const std::vector<float> hot_k = hot(f32.k);
  for (int t = 0; t < kTokens; ++t)
    for (int i = 0; i < kvd; ++i) {
      const std::size_t at = std::size_t(t) * kvd + i;
      ASSERT_EQ(num::bits_of(kivi.k[at]), num::bits_of(t % 32 == 31 ? cold[at] : hot_k[at])) << t << " " << i;
    }
  EXPECT_TRUE(same_bits(kivi.v, hot(f32.v)));  // f16 values: FP16 either way
  EXPECT_EQ(kivi.cache.k_bytes, std::size_t(2) * kvd * 34 + std::size_t(kTokens - 64) * kvd * 2);
}

// q8_0 weights: the twin computes exactly the f32 forward of the stored model
// (matrices decoded exactly, norms and biases in FP32).
TEST(KvPolicyTwin, Q8WeightsRunTheStoredModel) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(4, 2, 16, RopeStyle::interleaved, true);
  c.hidden = 160;  // every matrix width a multiple of 32
  const Model m = test::tiny_model(c, test::test_seed());
  const auto tokens = test::prompt_tokens(20, c.vocab, 9);
  const TapSet q8 = engine_forward(m, tokens, options("f16", "q8_0"));
  ASSERT_EQ(test::gross_failure(q8), "");
  const Model stored = stored_model(m, test::weight_format("q8_0"));
  EXPECT_EQ(bitwise_difference(q8, engine_forward(stored, tokens, options("f16", "f32"))), "");
  EXPECT_NE(bitwise_difference(q8, engine_forward(m, tokens, options("f16", "f32"))), "");
}

// Rows the block does not divide (kv_dim 16 against every block format, 40 = 2 heads of
// 20 against 32 and 64): the twin's cold values are the FP32 decode of what the
// reference's store (reference/mp/kv_store.cpp) decodes exactly from the same FP32 K
// and V -- its float64 value rounded once to FP32 (decode() is that rounding: exact for
// the scale-times-quant formats, one fma for the asymmetric ones) -- and the cache
// holds ceil(kv_dim / block) blocks per token row.
TEST(KvPolicyTwin, PaddedRowBlocksMatchTheReferenceStore) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  constexpr int kRows = 5;
  for (const auto& [kv_heads, head_dim] : {std::pair{1, 16}, std::pair{2, 20}}) {
    const Model m = test::tiny_model(test::tiny_config(4, kv_heads, head_dim, RopeStyle::rotate_half, true),
                                     test::test_seed());
    const ModelConfig& c = m.config;
    const int kvd = c.kv_dim();
    const auto tokens = test::prompt_tokens(kRows, c.vocab, 11);
    auto run = [&](const std::string& kv) {
      Engine e(m, options(kv));
      const int seq = e.add_sequence(kRows);
      const StepOutput& out = e.step({{seq, tokens}}, true);
      return Layer0{out.layers[0].k, out.layers[0].v, e.cache_values(seq, 0)};
    };
    const Layer0 f32 = run("f32");  // layer 0's FP32 K and V, the same under every policy
    MpArray k(f32.k.size(), 53), v(f32.v.size(), 53);  // [kRows, kv_dim]
    for (std::size_t i = 0; i < f32.k.size(); ++i) {
      mpfr_set_flt(k[i], f32.k[i], MPFR_RNDN);
      mpfr_set_flt(v[i], f32.v[i], MPFR_RNDN);
    }
    for (const quant::FormatInfo& f : quant::all_formats()) {
      if (f.block == 1 || kvd % f.block == 0) continue;
      SCOPED_TRACE(std::string(f.name) + " kv_dim " + std::to_string(kvd));
      const Layer0 q = run(f.name);
      const quant::KvPolicy policy = quant::resolve_kv_policy(test::kv_spec(f.name), {}, c);
      const MpKvStore ref = store_kv(k, v, policy, 0, kRows, c);
      std::vector<float> k_ref(k.size()), v_ref(v.size());  // [kRows, kv_dim]
      for (std::size_t i = 0; i < k.size(); ++i) {
        k_ref[i] = float(mpfr_get_d(ref.k_cold[i], MPFR_RNDN));  // exact double, then one rounding
        v_ref[i] = float(mpfr_get_d(ref.v_cold[i], MPFR_RNDN));
      }
      std::vector<float> k_head(head_major_rows(k_ref, c, kRows)), v_head(head_major_rows(v_ref, c, kRows));
      EXPECT_TRUE(same_bits(q.cache.k, k_head));
      EXPECT_TRUE(same_bits(q.cache.v, v_head));
      EXPECT_TRUE(same_bits(q.k, k_ref));  // no hot window: the taps are the cold form
      EXPECT_FALSE(same_bits(q.k, f32.k));  // quantization happened
      const std::size_t row_bytes = std::size_t((kvd + f.block - 1) / f.block) * f.bytes;
      EXPECT_EQ(q.cache.k_bytes, kRows * row_bytes);
      EXPECT_EQ(q.cache.v_bytes, kRows * row_bytes);
    }
  }
}

TEST(KvPolicyTwin, ConstructionRejectsWhatDoesNotFit) {
  const Model narrow = test::tiny_model(test::tiny_config(4, 1, 16, RopeStyle::interleaved, false), 1);  // kv_dim 16
  EXPECT_NO_THROW(Engine(narrow, options("q8_0")));      // one padded block per row (row_blocks.h)
  EXPECT_NO_THROW(Engine(narrow, options("int4a_64")));
  EXPECT_NO_THROW(Engine(narrow, options("k=q8_0+v=f16+kivi")));  // KIVI keys run along tokens
  EXPECT_THROW(Engine(narrow, options("f16+hot=0")), InputError);
  EXPECT_THROW(Engine(narrow, options("f8")), InputError);
  EXPECT_THROW(Engine(narrow, options("f16", "q8_0")), InputError);  // hidden 140: not a multiple of 32
  EXPECT_THROW(Engine(narrow, options("f16", "q9")), InputError);
  EngineOptions scaled = options("f16");
  scaled.kv_scales = {1.0f, 2.0f};  // needs [2 layers, 2, 1 head] = 4
  EXPECT_THROW(Engine(narrow, scaled), InputError);
  scaled.kv_scales = {1.0f, 2.0f, 3.0f, 4.0f};
  EXPECT_NO_THROW(Engine(narrow, scaled));
}

TEST(KvPolicyTwin, CacheValuesRejectsUnknownSequenceOrLayer) {
  const Model m = kv_model();
  Engine e(m, options("q8_0"));
  const int seq = e.add_sequence(8);
  e.step({{seq, {1, 2, 3}}});
  EXPECT_EQ(e.cache_values(seq, 1).k.size(), std::size_t(m.config.kv_dim()) * 3);
  EXPECT_THROW(e.cache_values(seq + 1, 0), InputError);
  EXPECT_THROW(e.cache_values(seq, 2), InputError);
  EXPECT_THROW(e.cache_values(seq, -1), InputError);
}

}  // namespace
}  // namespace kvfid::engine
