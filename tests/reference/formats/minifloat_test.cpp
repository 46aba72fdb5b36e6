#include "reference/formats/minifloat.h"

#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "tests/reference/formats/minifloat_saturating.h"

namespace kvfid::ref {
namespace {

using test::minifloat_encode_saturating;
using test::minifloat_max_finite_code;

TEST(Minifloat, Fp16KnownCodes) {
  EXPECT_EQ(f16_to_double(0x3C00), 1.0);
  EXPECT_EQ(f16_to_double(0x7BFF), 65504.0);
  EXPECT_EQ(f16_to_double(0x0001), std::ldexp(1.0, -24));
  EXPECT_EQ(f16_to_double(0x0400), std::ldexp(1.0, -14));
  EXPECT_EQ(f16_to_double(0xC000), -2.0);
  EXPECT_TRUE(std::isinf(f16_to_double(0x7C00)));
  EXPECT_TRUE(std::isnan(f16_to_double(0x7E00)));
}

// Every finite FP16 and BF16 code survives decode-then-encode: the codec is a bijection
// on finite values (signed zeros included).
TEST(Minifloat, RoundTripEveryFiniteCode) {
  for (MiniFloatSpec spec : {kFp16, kBf16, kFp8E5M2, kFp8E4M3}) {
    const std::uint32_t n = 1u << (1 + spec.exp_bits + spec.man_bits);
    for (std::uint32_t code = 0; code < n; ++code) {
      double v = minifloat_decode(code, spec);
      if (std::isnan(v)) continue;
      ASSERT_EQ(minifloat_encode_rne(v, spec), code) << "code " << code;
    }
  }
}

// Ties go to even, and the midpoint between the largest finite value and the next
// power of two overflows to Inf (IEEE 754 round-to-nearest-even).
TEST(Minifloat, Fp16TiesAndOverflow) {
  const double one_ulp = std::ldexp(1.0, -10);
  EXPECT_EQ(double_to_f16(1.0 + one_ulp / 2), 0x3C00);          // tie to even (down)
  EXPECT_EQ(double_to_f16(1.0 + 3 * one_ulp / 2), 0x3C02);      // tie to even (up)
  EXPECT_EQ(double_to_f16(65519.999), 0x7BFF);
  EXPECT_EQ(double_to_f16(65520.0), 0x7C00);
  EXPECT_EQ(double_to_f16(std::ldexp(1.0, -25)), 0x0000);        // half the smallest subnormal: tie to 0
  EXPECT_EQ(double_to_f16(std::ldexp(3.0, -26)), 0x0001);        // above the tie
  EXPECT_EQ(double_to_f16(-0.0), 0x8000);
}

// OCP E4M3 "fn": the all-ones exponent holds normals (up to 1.75 * 2^8 = 448), only
// S.1111.111 is NaN, and there is no Inf: the non-saturating conversion overflows to
// NaN, the saturating one to +-448.
TEST(Minifloat, Fp8E4M3FiniteOnly) {
  EXPECT_EQ(minifloat_decode(0x7E, kFp8E4M3), 448.0);
  EXPECT_EQ(minifloat_decode(0x78, kFp8E4M3), 256.0);
  EXPECT_EQ(minifloat_decode(0x01, kFp8E4M3), std::ldexp(1.0, -9));
  EXPECT_TRUE(std::isnan(minifloat_decode(0x7F, kFp8E4M3)));
  EXPECT_TRUE(std::isnan(minifloat_decode(0xFF, kFp8E4M3)));
  EXPECT_EQ(minifloat_encode_rne(464.0, kFp8E4M3), 0x7Eu);  // tie with 480 goes to even 448
  EXPECT_EQ(minifloat_encode_rne(465.0, kFp8E4M3), 0x7Fu);  // overflow: NaN
  EXPECT_EQ(minifloat_encode_rne(-INFINITY, kFp8E4M3), 0xFFu);
  EXPECT_EQ(minifloat_encode_saturating(465.0, kFp8E4M3), 0x7Eu);
  EXPECT_EQ(minifloat_encode_saturating(-INFINITY, kFp8E4M3), 0xFEu);
  EXPECT_EQ(minifloat_encode_saturating(1e6, kFp8E5M2), 0x7Bu);  // 57344
  EXPECT_EQ(minifloat_encode_saturating(-57344.0, kFp8E5M2), 0xFBu);
  EXPECT_EQ(minifloat_encode_saturating(65504.0, kFp16), 0x7BFFu);
  EXPECT_EQ(minifloat_encode_saturating(65520.0, kFp16), 0x7BFFu);  // RNE would give Inf
  EXPECT_EQ(minifloat_max_finite_code(kFp8E4M3), 0x7Eu);
  EXPECT_EQ(minifloat_max_finite_code(kFp8E5M2), 0x7Bu);
}

// BF16 of a float is float's top half after RNE: compare against the bit-level rule
// on a deterministic sweep of float bit patterns.
TEST(Minifloat, Bf16MatchesBitRule) {
  for (std::uint64_t i = 0; i < (1ull << 32); i += 65537 * 3) {
    std::uint32_t bits = std::uint32_t(i);
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f)) continue;
    std::uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    ASSERT_EQ(double_to_bf16(f), rounded) << "bits " << bits;
  }
}

}  // namespace
}  // namespace kvfid::ref
