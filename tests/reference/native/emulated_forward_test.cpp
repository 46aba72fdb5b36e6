#include "reference/native/emulated_forward.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "reference/io/load_model.h"
#include "reference/mp/golden_forward.h"
#include "reference/synth/synthetic_model.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

const std::vector<int> kTokens = {3, 17, 0, 31, 17, 9, 4, 4};

// Largest |emulated - golden| over a tap, relative to the tap's largest |golden|.
double relative_error(const TapTensor& emulated, const TapTensor& golden) {
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < golden.values.size(); ++i) {
    err = std::max(err, std::abs(emulated.values[i] - golden.values[i]));
    scale = std::max(scale, std::abs(golden.values[i]));
  }
  return err / scale;
}

TEST(EmulatedForward, Fp16ErrsMoreThanFp32) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(2), test::test_seed());
  const GoldenResult golden = compute_golden(model, kTokens, GoldenOptions{});
  const TapSet f32 = emulated_forward(model, kTokens, Emulation{}, TapSelection::all);
  const TapSet f16 = emulated_forward(model, kTokens, {FloatFormat::f16, test::weight_format("f16"), test::kv_spec("f16")},
                                      TapSelection::all);
  ASSERT_EQ(f32.size(), golden.taps.size());
  for (std::size_t i = 0; i < golden.taps.size(); ++i) {
    for (double v : f32[i].values) ASSERT_TRUE(std::isfinite(v)) << f32[i].name;
    for (double v : f16[i].values) ASSERT_TRUE(std::isfinite(v)) << f16[i].name;
  }
  const double e32 = relative_error(*find_tap(f32, "logits"), *find_tap(golden.taps, "logits"));
  const double e16 = relative_error(*find_tap(f16, "logits"), *find_tap(golden.taps, "logits"));
  // The error model: one rounding costs at most the unit roundoff u (2^-24 in binary32)
  // relative, and a forward this small compounds a few hundred of them; a relative error
  // beyond 2^-12 in binary32 would mean a lost operand, not rounding.
  constexpr double kF32ErrorCeiling = 0x1p-12;
  EXPECT_GT(e32, 0.0) << "the f32 emulation reproduced the golden exactly: nothing was rounded";
  EXPECT_LT(e32, kF32ErrorCeiling);
  EXPECT_GT(e16, e32);
}

TEST(EmulatedForward, KvCacheHoldsTheCacheFormat) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  for (FloatFormat kv : {FloatFormat::f16, FloatFormat::bf16}) {
    const TapSet taps = emulated_forward(model, kTokens, {FloatFormat::f32, test::weight_format("f32"), test::kv_spec(to_string(kv))}, TapSelection::all);
    for (const char* name : {"layers.0.k", "layers.0.v"})
      for (double v : find_tap(taps, name)->values) ASSERT_EQ(round_to_format(v, kv), v) << name << " " << to_string(kv);
    // Without cache rounding K keeps binary32 values that the narrow format cannot hold.
    const TapSet plain = emulated_forward(model, kTokens, Emulation{}, TapSelection::all);
    const auto& k = find_tap(plain, "layers.0.k")->values;
    EXPECT_TRUE(std::any_of(k.begin(), k.end(), [kv](double v) { return round_to_format(v, kv) != v; }));
  }
}

TEST(EmulatedForward, EveryTapValueIsInTheArithmeticFormat) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(), test::test_seed());
  for (FloatFormat f : {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16}) {
    const TapSet taps = emulated_forward(model, kTokens, {f, test::weight_format("f32"), test::kv_spec("f32")}, TapSelection::all);
    for (const TapTensor& t : taps)
      for (double v : t.values) ASSERT_EQ(round_to_format(v, f), v) << t.name << " " << to_string(f);
  }
}

// The baseline emulates the model the engine runs: matrices in the weight format, norm
// weights and biases in FP32 (packed_model.h). An emulation with f16 weights is the f32
// emulation of the model whose matrices were rounded to f16 beforehand, bit for bit.
// (Rounding the norms and biases to f16 too, as the emulation once did, fails this: the
// model below has norm weights and biases that f16 cannot hold.)
TEST(EmulatedForward, WeightFormatRoundsMatricesOnly) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(2);
  c.qkv_bias = true, c.arch = Arch::qwen2;
  const Model model = make_synthetic_model(c, test::test_seed());
  int not_f16 = 0;  // the precondition that makes the old behaviour observable
  for (const LayerWeights& l : model.layers)
    for (const auto* v : {&l.attn_norm, &l.ffn_norm, &l.bq, &l.bk, &l.bv})
      for (double x : *v) not_f16 += round_to_format(x, FloatFormat::f16) != x;
  ASSERT_GT(not_f16, 0);
  Model matrices_in_f16 = model;
  auto round_matrix = [](Matrix& m) {
    for (double& x : m.mutable_values()) x = round_to_format(x, FloatFormat::f16);
  };
  round_matrix(matrices_in_f16.embedding);
  round_matrix(matrices_in_f16.classifier);
  for (LayerWeights& l : matrices_in_f16.layers)
    for (Matrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w1, &l.w3, &l.w2}) round_matrix(*m);
  const TapSet f16 = emulated_forward(model, kTokens, {FloatFormat::f32, test::weight_format("f16"), test::kv_spec("f32")}, TapSelection::all);
  const TapSet expected = emulated_forward(matrices_in_f16, kTokens, Emulation{}, TapSelection::all);
  ASSERT_EQ(f16.size(), expected.size());
  for (std::size_t i = 0; i < f16.size(); ++i)
    for (std::size_t j = 0; j < f16[i].values.size(); ++j)
      ASSERT_EQ(f16[i].values[j], expected[i].values[j]) << f16[i].name << " " << j;
}

// A quantized KV policy reaches the emulated cache: the v taps of a q8_0 cache hold
// q8_0 values (each 32-value row block a multiple of one FP16 scale, |q| <= 127).
TEST(EmulatedForward, KvPolicyStoresBlockCodes) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config();
  c.head_dim = 16, c.dim = 64;  // kv_dim 32: one q8_0 block per row
  const Model model = make_synthetic_model(c, test::test_seed());
  const TapSet taps = emulated_forward(model, kTokens, {FloatFormat::f32, test::weight_format("f32"), test::kv_spec("q8_0")}, TapSelection::all);
  const TapSet plain = emulated_forward(model, kTokens, Emulation{}, TapSelection::all);
  const auto& v = find_tap(taps, "layers.0.v")->values;  // [T, 32]: layer 0's V does not depend on the cache
  const auto& exact = find_tap(plain, "layers.0.v")->values;
  for (std::size_t row = 0; row < kTokens.size(); ++row) {
    std::vector<float> x(32);  // the FP32 values the block was encoded from
    float amax = 0;
    for (int i = 0; i < 32; ++i) {
      x[i] = float(exact[row * 32 + i]);  // exact: the f32 emulation's values are FP32
      amax = std::max(amax, std::abs(x[i]));
    }
    const double d = round_to_format(double(amax / 127.0f), FloatFormat::f16);  // the block's FP16 scale
    const quant::FormatInfo& q8 = quant::format_by_name("q8_0", "test");
    for (int i = 0; i < 32; ++i) {
      const double q = v[row * 32 + i] / d;
      ASSERT_EQ(q, std::round(q)) << row << " " << i;
      ASSERT_LE(std::abs(q), 127) << row << " " << i;
      ASSERT_LE(std::abs(v[row * 32 + i] - x[i]), q8.error_bound(x.data(), i, {})) << row << " " << i;
    }
  }
}

// An eviction that drops keys a query would read (H2O at 3 past keys over 12 tokens) is
// emulated by the MPFR forward itself: the baseline evicts as the engine does, so it is
// not the full cache's.
TEST(EmulatedForward, AnEvictingBaselineEvicts) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-llama");
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9, 4, 4, 12, 5, 30, 2};
  const Emulation evicting{FloatFormat::f32, test::weight_format("f32"), test::kv_spec("f16+evict=h2o:3")};
  const Emulation full{FloatFormat::f32, test::weight_format("f32"), test::kv_spec("f16")};
  const TapSet baseline = emulated_forward(model, tokens, evicting, TapSelection::logits);
  EXPECT_TRUE(test::same_tap_bits(baseline, emulated_forward_mpfr(model, tokens, evicting, TapSelection::logits)));
  EXPECT_FALSE(test::same_tap_bits(baseline, emulated_forward(model, tokens, full, TapSelection::logits)));
}

// The window cache of a windowed model (evict=window) evicts no key a later query reads:
// its MPFR emulation (evicting_attention over the kept keys) is the masked forward's,
// every tap bit for bit, which is why emulated_forward computes it natively. tiny-gemma2
// (window 5 on layer 0, layer 1 global) over 24 tokens, f16 and q8_0 with a hot window.
TEST(EmulatedForward, TheWindowCacheIsTheMaskedForward) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-gemma2");
  std::vector<int> tokens(24);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = int(11 * i + 5) % model.config.vocab;
  for (const std::string storage : {"f16", "q8_0+hot=3"}) {
    SCOPED_TRACE(storage);
    const Emulation masked{FloatFormat::f32, test::weight_format("f32"), test::kv_spec(storage)};
    const Emulation windowed{FloatFormat::f32, test::weight_format("f32"), test::kv_spec(storage + "+evict=window")};
    const TapSet reference = emulated_forward_mpfr(model, tokens, masked, TapSelection::all);
    EXPECT_TRUE(test::same_tap_bits(emulated_forward_mpfr(model, tokens, windowed, TapSelection::all), reference));
    EXPECT_TRUE(test::same_tap_bits(emulated_forward(model, tokens, windowed, TapSelection::all), reference));
  }
}

}  // namespace
}  // namespace kvfid::ref
