// The IEEE policy reproduces hardware arithmetic exactly.
#include "reference/mp/mp_arith.h"

#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>

#include "reference/mp/mp_array.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

float random_float(std::uint64_t& s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return std::ldexp(float(std::int32_t(s >> 40) - (1 << 23)), -23 + int(s >> 60) % 5 - 2);
}

// A dot product in binary32 with a separate multiply and add (this file is compiled with
// -ffp-contract=off, so the compiler fuses nothing) is what the f32 emulation computes.
TEST(MpArith, F32DotMatchesFloat) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const MpArith arith = MpArith::ieee(FloatFormat::f32);
  constexpr int n = 24;
  std::uint64_t s = test::test_seed();
  MpArray a(n, 24), b(n, 24), out(2, 24);
  float expected = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float x = random_float(s), y = random_float(s);
    mpfr_set_flt(a[j], x, MPFR_RNDN);
    mpfr_set_flt(b[j], y, MPFR_RNDN);
    const float product = x * y;
    expected = expected + product;
  }
  arith.dot(out[0], a[0], 1, b[0], 1, n, out[1]);
  EXPECT_EQ(mpfr_get_flt(out[0], MPFR_RNDN), expected);
}

// Subnormal results and overflow follow IEEE binary32 (checked against the hardware).
TEST(MpArith, F32SubnormalsAndOverflow) {
  ExponentRangeScope range;
  const MpArith arith = MpArith::ieee(FloatFormat::f32);
  MpArray a(1, 24), b(1, 24), r(1, 24);
  const float cases[][2] = {{std::ldexp(1.0f, -100), std::ldexp(1.0f, -40)},
                            {1.0f + std::ldexp(1.0f, -23), std::ldexp(1.5f, -130)},
                            {std::ldexp(1.75f, -75), std::ldexp(1.25f, -75)},
                            {std::ldexp(1.0f, -100), std::ldexp(1.0f, -60)},
                            {3e38f, 2.0f}};
  for (const auto& c : cases) {
    mpfr_set_flt(a[0], c[0], MPFR_RNDN);
    mpfr_set_flt(b[0], c[1], MPFR_RNDN);
    arith.mul(r[0], a[0], b[0]);
    const float expected = c[0] * c[1];
    EXPECT_EQ(mpfr_get_flt(r[0], MPFR_RNDN), expected) << c[0] << " * " << c[1];
  }
}

// FP16 products: two 11-bit significands multiply exactly in float64, so the format's
// own rounding of the float64 product is the reference.
TEST(MpArith, F16ProductsMatchTheFormatsRounding) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const MpArith arith = MpArith::ieee(FloatFormat::f16);
  MpArray a(1, 11), b(1, 11), r(1, 11);
  std::uint64_t s = test::test_seed();
  for (int i = 0; i < 2000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    // Exponents spread from the subnormals to overflow.
    const double x = round_to_format(std::ldexp(double(s >> 40) / double(1 << 24) + 0.5, int(s % 24) - 12), FloatFormat::f16);
    const double y = round_to_format(std::ldexp(double((s >> 20) & 0xFFFFF) / double(1 << 20) - 0.5, int((s >> 8) % 24) - 8),
                                     FloatFormat::f16);
    mpfr_set_d(a[0], x, MPFR_RNDN);
    mpfr_set_d(b[0], y, MPFR_RNDN);
    arith.mul(r[0], a[0], b[0]);
    ASSERT_EQ(mpfr_get_d(r[0], MPFR_RNDN), round_to_format(x * y, FloatFormat::f16)) << x << " * " << y;
  }
}

}  // namespace
}  // namespace kvfid::ref
