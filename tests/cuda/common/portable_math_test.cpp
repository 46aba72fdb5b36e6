// exp_portable, log_portable and silu against float64 libm (whose error, below 1e-16
// relative, is negligible at FP32 resolution).
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

}  // namespace
}  // namespace kvfid::engine
