#include "reference/mp/emulated_forward.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "reference/mp/golden_forward.h"
#include "reference/synth/synthetic_model.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid {
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
  const TapSet f16 = emulated_forward(model, kTokens, {FloatFormat::f16, FloatFormat::f16, FloatFormat::f16},
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
    const TapSet taps = emulated_forward(model, kTokens, {FloatFormat::f32, FloatFormat::f32, kv}, TapSelection::all);
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
    const TapSet taps = emulated_forward(model, kTokens, {f, FloatFormat::f32, FloatFormat::f32}, TapSelection::all);
    for (const TapTensor& t : taps)
      for (double v : t.values) ASSERT_EQ(round_to_format(v, f), v) << t.name << " " << to_string(f);
  }
}

}  // namespace
}  // namespace kvfid
