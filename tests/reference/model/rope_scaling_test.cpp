// Llama 3 RoPE scaling (reference/model/rope_scaling.h) against transformers' three
// cases written out independently, the band counts of Llama-3.1-8B's frequencies, and the
// MPFR tables (reference/mp/rope.h) against angles computed directly.
#include "reference/model/rope_scaling.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

#include "reference/mp/mp_weights.h"
#include "reference/mp/rope.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

constexpr RopeScaling kLlama31{8, 1, 4, 8192};  // Llama-3.1-8B's config.json

// transformers' _compute_llama3_parameters for one frequency: the wavelength decides
// kept / divided / interpolated. In long double, so it is a separate computation.
long double hf_llama3(const RopeScaling& r, long double f) {
  const long double pi = std::numbers::pi_v<long double>, wavelen = 2 * pi / f;
  const long double low_wavelen = r.original_max_positions / r.low_freq_factor;
  const long double high_wavelen = r.original_max_positions / r.high_freq_factor;
  if (wavelen < high_wavelen) return f;
  if (wavelen > low_wavelen) return f / r.factor;
  const long double smooth = (r.original_max_positions / wavelen - r.low_freq_factor) /
                             (r.high_freq_factor - r.low_freq_factor);
  return (1 - smooth) * f / r.factor + smooth * f;
}

TEST(RopeScaling, AgreesWithTransformersThreeCases) {
  for (int i = 0; i < 64; ++i) {
    const double f = std::pow(500000.0, -2.0 * i / 128);
    const double ours = llama3_scaled_frequency(kLlama31, f, std::numbers::pi);
    const long double theirs = hf_llama3(kLlama31, f);
    // A handful of float64 roundings against long double: within 8 u.
    EXPECT_LE(std::fabs((long double)ours - theirs), 8 * 0x1p-53L * theirs) << "pair " << i;
  }
}

// Llama-3.1-8B (head_dim 128, theta 500000, original context 8192): wavelengths below
// 8192/4 = 2048 are kept, above 8192 divided by 8. By hand: 2 pi 500000^(i/64) < 2048 for
// i <= 28, > 8192 for i >= 35, so 29 pairs are kept, 6 interpolated and 29 divided.
TEST(RopeScaling, Llama31FrequenciesFallInTheirBands) {
  int kept = 0, divided = 0, between = 0;
  for (int i = 0; i < 64; ++i) {
    const double f = std::pow(500000.0, -2.0 * i / 128);
    const double scaled = llama3_scaled_frequency(kLlama31, f, std::numbers::pi);
    if (scaled == f) ++kept;
    else if (scaled == f / 8) ++divided;
    else {
      ++between;
      EXPECT_TRUE(scaled > f / 8 && scaled < f) << "pair " << i;
    }
  }
  EXPECT_EQ(kept, 29);
  EXPECT_EQ(between, 6);
  EXPECT_EQ(divided, 29);
}

// The interpolation meets the kept and divided frequencies at the band's ends, and a
// factor of 1 changes nothing.
TEST(RopeScaling, ContinuousAtTheBandEndsAndNeutralAtFactorOne) {
  const double pi = std::numbers::pi;
  const double at_high = 4 * 2 * pi / 8192, at_low = 1 * 2 * pi / 8192;  // L f / (2 pi) = hi, lo
  EXPECT_NEAR(llama3_scaled_frequency(kLlama31, at_high, pi), at_high, 4e-16 * at_high);
  EXPECT_NEAR(llama3_scaled_frequency(kLlama31, at_low, pi), at_low / 8, 4e-16 * at_low);
  for (int i = 0; i < 64; ++i) {
    const double f = std::pow(500000.0, -2.0 * i / 128);
    EXPECT_NEAR(llama3_scaled_frequency(RopeScaling{1, 1, 4, 8192}, f, pi), f, 4e-16 * f) << "pair " << i;
  }
}

// The MPFR table at 128 bits: at position t, a kept pair turns by t f, a divided pair by
// t f / 8 and an interpolated one by t f' (f' computed directly at 256 bits); each cosine
// and sine rounds to the float64 of the direct computation.
TEST(RopeScaling, MpfrTableTurnsEachBandByItsFrequency) {
  ExponentRangeScope range;
  const RopeScaling r{8, 1, 4, 256};  // head_dim 8, theta 500000: pairs 0 kept, 1 between, 2 and 3 divided
  const MpArith arith = MpArith::exact(128);
  const MpArray theta = mp_constant(500000.0);
  const int tokens = 5;
  const RopeTable table = make_rope_table(tokens, 8, theta[0], r, arith);
  MpArray f(1, 256), angle(1, 256), x(1, 256), c(1, 256), pi2(1, 256);
  mpfr_const_pi(pi2[0], MPFR_RNDN);
  mpfr_mul_2ui(pi2[0], pi2[0], 1, MPFR_RNDN);
  for (int i = 0; i < 4; ++i) {
    mpfr_set_d(f[0], -2.0 * i / 8, MPFR_RNDN);  // exact: i/4
    mpfr_pow(f[0], theta[0], f[0], MPFR_RNDN);
    // s = clamp((L f / (2 pi) - lo) / (hi - lo), 0, 1); f' = (1 - s) f / 8 + s f
    mpfr_mul_ui(x[0], f[0], 256, MPFR_RNDN);
    mpfr_div(x[0], x[0], pi2[0], MPFR_RNDN);
    mpfr_sub_ui(x[0], x[0], 1, MPFR_RNDN);
    mpfr_div_ui(x[0], x[0], 3, MPFR_RNDN);
    const double s = std::clamp(mpfr_get_d(x[0], MPFR_RNDN), 0.0, 1.0);
    EXPECT_EQ(s == 1.0, i == 0) << "pair " << i;
    EXPECT_EQ(s > 0 && s < 1, i == 1) << "pair " << i;
    if (mpfr_sgn(x[0]) < 0) mpfr_set_zero(x[0], 1);
    if (mpfr_cmp_ui(x[0], 1) > 0) mpfr_set_ui(x[0], 1, MPFR_RNDN);
    mpfr_ui_sub(c[0], 1, x[0], MPFR_RNDN);
    mpfr_div_ui(c[0], c[0], 8, MPFR_RNDN);
    mpfr_add(c[0], c[0], x[0], MPFR_RNDN);
    mpfr_mul(f[0], f[0], c[0], MPFR_RNDN);  // f' = f ((1 - s) / 8 + s)
    for (int t = 0; t < tokens; ++t) {
      mpfr_mul_ui(angle[0], f[0], t, MPFR_RNDN);
      mpfr_cos(c[0], angle[0], MPFR_RNDN);
      EXPECT_EQ(mpfr_get_d(table.cos[std::size_t(t) * 4 + i], MPFR_RNDN), mpfr_get_d(c[0], MPFR_RNDN))
          << "pair " << i << " position " << t;
      mpfr_sin(c[0], angle[0], MPFR_RNDN);
      EXPECT_EQ(mpfr_get_d(table.sin[std::size_t(t) * 4 + i], MPFR_RNDN), mpfr_get_d(c[0], MPFR_RNDN))
          << "pair " << i << " position " << t;
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
