// exp_portable, log_portable, silu, tanh_portable, soft_cap and gelu_tanh against
// float64 libm (whose error, below 1e-16 relative, is negligible at FP32 resolution).
#include "cuda/common/portable_math.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <gtest/gtest.h>

#include "tests/cuda/common/portable_math_bounds.h"

namespace kvfid::engine {
namespace {

using test::kExpMaxUlp;
using test::kExpSubnormalMaxUnits;
using test::kLogMaxUlp;
// SiLU = x / (1 + exp(-x)): exp's < 1 ulp damped by exp(-x)/(1+exp(-x)) < 1 in the add,
// plus 0.5 ulp each for the add and the divide: < 2 ulp; measured 1.976, bound 2.0.
constexpr double kSiluMaxUlp = 2.0;
// tanh_portable, u = 2^-24 (an ulp is at most 2u relative): the Taylor branch (|x| <
// 0.55) ends in one fma onto the exact x, its correction below 0.1 |x| and within a
// few u of itself: < 1 ulp. The exp branch: e = exp(-2a) <= 1/3 within 2u (kExpMaxUlp),
// so 1 - e errs by e/(1 - e) 2u <= u plus its rounding u, 1 + e by (e/(1 + e)) 2u <=
// 0.5u plus u, the division by u: 4.5u relative, at most 4.5 ulp of a result in [0.5, 1).
// Measured: 1.500 ulp.
constexpr double kTanhMaxUlp = 4.5;
// soft_cap = cap tanh(x / cap): the division's u passes through tanh damped (y sech^2 y
// / tanh y <= 1), tanh adds kTanhMaxUlp ulps (<= 9u relative), the product u: 11u
// relative, at most 11 ulp. Measured: 3.213 ulp.
constexpr double kSoftCapMaxUlp = 11.0;
// gelu_tanh(x) = (0.5 x)(1 + t): 1 + t cancels for negative x, so the error is measured
// against u |x|. tanh's argument C (x + A x^3) carries five roundings (x x, * x, * A, + x,
// * C; the two terms have one sign, so no cancellation) and the rounded C and A, 7u
// relative, which tanh turns into 7u |v| sech^2 v <= 7u 0.448 = 3.2u absolute; tanh adds
// kTanhMaxUlp ulps of |t| < 1 (4.5u); 1 + t rounds by <= 2u. Times 0.5 |x|: 4.85u |x|;
// the last two products add u |result| each, |result| <= 1.13 |x| (|gelu(x)/x| <= 1.13
// where the product rounds): 2.3u |x|. In all 7.15u |x|. Measured: 2.136u |x|.
constexpr double kGeluTanhMaxScaled = 7.15;

double ulp_f32(double v) {
  v = std::fabs(v);
  if (v < std::ldexp(1.0, -126)) return std::ldexp(1.0, -149);
  return std::ldexp(1.0, std::ilogb(v) - 23);
}

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(EnginePortableMath, ExpSpecialValues) {
  EXPECT_EQ(num::exp_portable(0.0f), 1.0f);
  EXPECT_EQ(num::exp_portable(-0.0f), 1.0f);
  EXPECT_TRUE(std::isinf(num::exp_portable(89.0f)));
  EXPECT_TRUE(std::isinf(num::exp_portable(std::numeric_limits<float>::infinity())));
  EXPECT_EQ(num::exp_portable(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(num::exp_portable(-105.0f), 0.0f);
  EXPECT_TRUE(std::isnan(num::exp_portable(std::nanf(""))));
  EXPECT_EQ(num::exp_portable(88.72283935546875f), float(std::exp(88.72283935546875)));  // the largest finite
}

// Every 61st float in [-104, 88.73]: all exponents of the argument, dense near 0.
TEST(EnginePortableMath, ExpAccuracy) {
  double worst = 0, worst_sub = 0;
  float worst_x = 0;
  for (std::uint64_t i = 0; i < (1ull << 32); i += 61) {
    const float x = from_bits(std::uint32_t(i));
    if (!(x >= -104.0f && x <= 88.72283935546875f)) continue;
    const double exact = std::exp(double(x));
    const double got = num::exp_portable(x);
    ASSERT_TRUE(std::isfinite(got)) << x;
    const double err = std::fabs(got - exact) / ulp_f32(exact);
    if (exact < std::ldexp(1.0, -126)) {
      worst_sub = std::max(worst_sub, err);
    } else if (err > worst) {
      worst = err;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, kExpMaxUlp) << "at x = " << worst_x;
  EXPECT_LE(worst_sub, kExpSubnormalMaxUnits);
  std::printf("exp_portable: max error %.3f ulp (normal results), %.3f units of 2^-149 (subnormal)\n", worst, worst_sub);
}

TEST(EnginePortableMath, LogSpecialValues) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(num::log_portable(1.0f), 0.0f);
  EXPECT_FALSE(std::signbit(num::log_portable(1.0f)));
  EXPECT_EQ(num::log_portable(0.0f), -kInf);
  EXPECT_EQ(num::log_portable(-0.0f), -kInf);
  EXPECT_EQ(num::log_portable(kInf), kInf);
  EXPECT_TRUE(std::isnan(num::log_portable(-1.0f)));
  EXPECT_TRUE(std::isnan(num::log_portable(-kInf)));
  EXPECT_TRUE(std::isnan(num::log_portable(std::nanf(""))));
}

// Error of log_portable(x) in ulps of the exact log(x); x == 1 (log 0) must give +0.
double log_error_ulp(float x) {
  const double exact = std::log(double(x));
  const double got = num::log_portable(x);
  if (exact == 0) return got == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::fabs(got - exact) / ulp_f32(exact);
}

// Every 61st positive finite float (subnormals, normals, all binades), every power of
// two from 2^-149 to 2^127, and the 2^20 floats on each side of 1 (where log(x) ~ x - 1
// is tiny and a relative error shows at once).
TEST(EnginePortableMath, LogAccuracy) {
  double worst = 0;
  float worst_x = 0;
  auto measure = [&](float x) {
    const double err = log_error_ulp(x);
    if (err > worst) {
      worst = err;
      worst_x = x;
    }
  };
  for (std::uint32_t u = 1; u < 0x7F800000u; u += 61) measure(from_bits(u));
  for (int e = -149; e <= 127; ++e) measure(std::ldexp(1.0f, e));
  for (std::uint32_t i = 0; i < (1u << 20); ++i) {
    measure(from_bits(0x3F800000u + i));
    measure(from_bits(0x3F800000u - i));
  }
  EXPECT_LE(worst, kLogMaxUlp) << "at x = " << worst_x;
  std::printf("log_portable: max error %.3f ulp (at %a)\n", worst, double(worst_x));
}

TEST(EnginePortableMath, SiluAccuracy) {
  double worst = 0;
  for (std::uint64_t i = 0; i < (1ull << 32); i += 997) {
    const float x = from_bits(std::uint32_t(i));
    if (!std::isfinite(x) || std::fabs(x) > 80.0f) continue;
    const double exact = double(x) / (1.0 + std::exp(-double(x)));
    const double got = num::silu(x);
    if (exact == 0) {
      ASSERT_EQ(got, 0.0);
      continue;
    }
    worst = std::max(worst, std::fabs(got - exact) / ulp_f32(exact));
  }
  EXPECT_LE(worst, kSiluMaxUlp);
  std::printf("silu: max error %.3f ulp\n", worst);
  EXPECT_EQ(num::silu(-200.0f), 0.0f);
  EXPECT_EQ(num::silu(200.0f), 200.0f);
}

TEST(EnginePortableMath, TanhSpecialValues) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(num::tanh_portable(0.0f), 0.0f);
  EXPECT_TRUE(std::signbit(num::tanh_portable(-0.0f)));
  EXPECT_EQ(num::tanh_portable(kInf), 1.0f);
  EXPECT_EQ(num::tanh_portable(-kInf), -1.0f);
  EXPECT_EQ(num::tanh_portable(9.2f), 1.0f);
  EXPECT_TRUE(std::isnan(num::tanh_portable(std::nanf(""))));
  EXPECT_EQ(num::tanh_portable(from_bits(1)), from_bits(1));  // the smallest subnormal: tanh x = x
  for (float x : {0.3f, 0.5499999f, 0.55f, 2.0f, 9.09f})
    EXPECT_EQ(num::tanh_portable(-x), -num::tanh_portable(x)) << x;  // odd, on both branches
}

// Every 61st float of |x| < 10 (every exponent down to the subnormals, both branches and
// the saturation), plus the 2^16 floats on each side of the branch point 0.55.
TEST(EnginePortableMath, TanhAccuracy) {
  double worst = 0;
  float worst_x = 0;
  auto measure = [&](float x) {
    const double exact = std::tanh(double(x));
    const double err = exact == 0 ? std::fabs(double(num::tanh_portable(x))) / std::ldexp(1.0, -149)
                                  : std::fabs(double(num::tanh_portable(x)) - exact) / ulp_f32(exact);
    if (err > worst) worst = err, worst_x = x;
  };
  for (std::uint64_t i = 0; i < (1ull << 32); i += 61) {
    const float x = from_bits(std::uint32_t(i));
    if (std::isfinite(x) && std::fabs(x) < 10.0f) measure(x);
  }
  const std::uint32_t branch = [] {
    float b = 0.55f;
    std::uint32_t u;
    std::memcpy(&u, &b, 4);
    return u;
  }();
  for (std::uint32_t i = 0; i < (1u << 16); ++i) measure(from_bits(branch + i)), measure(from_bits(branch - i));
  EXPECT_LE(worst, kTanhMaxUlp) << "at x = " << worst_x;
  std::printf("tanh_portable: max error %.3f ulp (at %a)\n", worst, double(worst_x));
}

// Gemma 2's caps (50 for scores, 30 for logits) and tiny-gemma2's (4, 3), inputs up to
// 20 times the cap (the saturated part).
TEST(EnginePortableMath, SoftCapAccuracy) {
  double worst = 0;
  for (const float cap : {50.0f, 30.0f, 4.0f, 3.0f})
    for (std::uint64_t i = 0; i < (1ull << 32); i += 997) {
      const float x = from_bits(std::uint32_t(i));
      if (!std::isfinite(x) || std::fabs(x) > 20 * cap) continue;
      const double exact = double(cap) * std::tanh(double(x) / double(cap));
      const double got = num::soft_cap(x, cap);
      if (std::fabs(x) < cap * std::ldexp(1.0, -126)) {
        // x / cap is subnormal: its rounding (half a unit of 2^-149) comes back times cap,
        // and the product rounds by half an ulp of its own (tanh returns q itself).
        const double ulp_out = ulp_f32(std::max(std::fabs(got), std::fabs(exact)));
        ASSERT_LE(std::fabs(got - exact), 0.5 * cap * std::ldexp(1.0, -149) + 0.5 * ulp_out) << x;
        continue;
      }
      worst = std::max(worst, std::fabs(got - exact) / ulp_f32(exact));
    }
  EXPECT_LE(worst, kSoftCapMaxUlp);
  std::printf("soft_cap: max error %.3f ulp\n", worst);
  EXPECT_EQ(num::soft_cap(1e30f, 30.0f), 30.0f);
  EXPECT_EQ(num::soft_cap(-1e30f, 30.0f), -30.0f);
}

// Against the formula in float64 with the exact constants; |x| < 40 (beyond, the cube
// overflows nothing yet and tanh is +-1), the error scaled by u |x|, u = 2^-24.
TEST(EnginePortableMath, GeluTanhAccuracy) {
  const double c = std::sqrt(2.0 / std::acos(-1.0)), u = std::ldexp(1.0, -24);
  const double kSubnormalFloor = std::ldexp(1.0, -149);
  double worst = 0;
  float worst_x = 0;
  for (std::uint64_t i = 0; i < (1ull << 32); i += 997) {
    const float x = from_bits(std::uint32_t(i));
    if (!std::isfinite(x) || std::fabs(x) > 40.0f || x == 0.0f) continue;
    const double xd = x;
    const double exact = 0.5 * xd * (1.0 + std::tanh(c * (xd + 0.044715 * xd * xd * xd)));
    // Where 0.5 x or the result is subnormal each of those two roundings may lose half a
    // unit of 2^-149 (kSubnormalFloor), whatever |x|.
    const double err = std::max(0.0, std::fabs(double(num::gelu_tanh(x)) - exact) - kSubnormalFloor) / (u * std::fabs(xd));
    if (err > worst) worst = err, worst_x = x;
  }
  EXPECT_LE(worst, kGeluTanhMaxScaled) << "at x = " << worst_x;
  std::printf("gelu_tanh: max error %.3f u |x| (at %a)\n", worst, double(worst_x));
  EXPECT_EQ(num::gelu_tanh(0.0f), 0.0f);
  EXPECT_EQ(num::gelu_tanh(100.0f), 100.0f);
  EXPECT_EQ(num::gelu_tanh(-100.0f), 0.0f);
}

}  // namespace
}  // namespace kvfid::engine
