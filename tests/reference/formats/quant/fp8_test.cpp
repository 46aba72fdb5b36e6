// The FP8 bit conversions the KV codecs use on host and device (fp8.h) against the
// exact codecs of reference/formats/minifloat.h, exhaustively: every one of the 256
// codes decoded, every FP16 value encoded (as a float, scale 1), plus the saturation
// points and hand-checked bytes.
#include <cmath>
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "reference/numeric/convert.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/fp8.h"
#include "tests/reference/formats/minifloat_saturating.h"

namespace kvfid::ref {
namespace {

using test::minifloat_encode_saturating;

using E4M3 = quant::Fp8Bits<4, 3, true>;
using E5M2 = quant::Fp8Bits<5, 2, false>;

template <class Bits>
void expect_every_code_decodes_exactly() {
  for (std::uint32_t code = 0; code < 256; ++code) {
    const double exact = minifloat_decode(code, Bits::kSpec);
    const float v = Bits::to_f32(std::uint8_t(code));
    if (std::isnan(exact)) {
      ASSERT_TRUE(std::isnan(v)) << "code " << code;
    } else {
      ASSERT_EQ(double(v), exact) << "code " << code;
      ASSERT_EQ(std::signbit(v), std::signbit(exact)) << "code " << code;
    }
  }
}

// Every FP16 value is exactly a float, so encoding it tests the rounding (ties
// included: FP16 has more fraction bits than FP8) over the whole FP8 range, the
// subnormals and the saturation.
template <class Bits>
void expect_every_f16_value_encodes_as_the_exact_codec() {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = num::f16_to_f32(std::uint16_t(h));
    const std::uint8_t got = Bits::from_f32_saturating(f);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(Bits::to_f32(got))) << "fp16 " << h;
      ASSERT_EQ(got & 0x80u, (h & 0x8000u) >> 8) << "NaN keeps its sign, fp16 " << h;
    } else {
      ASSERT_EQ(got, minifloat_encode_saturating(double(f), Bits::kSpec)) << "fp16 " << h << " = " << f;
    }
  }
}

// OCP 8-bit floating point specification: E4M3's largest normal is 448 (S.1111.110),
// E5M2's 57344 (S.11110.11).
TEST(Fp8, LargestValuesAreTheOcpSpecs) {
  static_assert(quant::Fp8E4M3::kUnitScaleMax == 448.0);
  static_assert(quant::Fp8E5M2::kUnitScaleMax == 57344.0);
  EXPECT_EQ(E4M3::to_f32(std::uint8_t(E4M3::kMaxFinite)), 448.0f);
  EXPECT_EQ(E5M2::to_f32(std::uint8_t(E5M2::kMaxFinite)), 57344.0f);
}

TEST(Fp8, E4M3DecodesEveryCodeExactly) { expect_every_code_decodes_exactly<E4M3>(); }
TEST(Fp8, E5M2DecodesEveryCodeExactly) { expect_every_code_decodes_exactly<E5M2>(); }
TEST(Fp8, E4M3EncodesEveryFp16ValueAsTheExactCodec) { expect_every_f16_value_encodes_as_the_exact_codec<E4M3>(); }
TEST(Fp8, E5M2EncodesEveryFp16ValueAsTheExactCodec) { expect_every_f16_value_encodes_as_the_exact_codec<E5M2>(); }

// FP32 values beyond FP16: the largest floats, Inf, and FP32 subnormals (which FP16
// cannot hold), against the exact codec.
TEST(Fp8, EncodesFloatsOutsideFp16AsTheExactCodec) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {std::numeric_limits<float>::max(), 1e30f, 65536.0f * 1.5f, inf, std::numeric_limits<float>::denorm_min(),
                  1e-40f, 0x1p-126f}) {
    for (float s : {f, -f}) {
      EXPECT_EQ(E4M3::from_f32_saturating(s), minifloat_encode_saturating(s, E4M3::kSpec)) << s;
      EXPECT_EQ(E5M2::from_f32_saturating(s), minifloat_encode_saturating(s, E5M2::kSpec)) << s;
    }
  }
}

// By hand. E4M3 (bias 7): 1.0 = 0.0111.000 = 0x38; the largest finite 448 =
// 1.75 * 2^8 = 0.1111.110 = 0x7E; 464 is the tie between 448 and the next step 480
// (which would be the NaN code) and goes to the even mantissa 110: 0x7E; 500 and Inf
// saturate to 0x7E; NaN is 0.1111.111 = 0x7F; 2^-9 is the smallest subnormal 0x01.
// E5M2 (bias 15): 1.0 = 0.01111.00 = 0x3C; 57344 = 1.75 * 2^15 = 0.11110.11 = 0x7B;
// 61440 ties between 57344 and 65536 (Inf, even mantissa) and saturates to 0x7B; NaN
// 0.11111.10 = 0x7E.
TEST(Fp8, HandCheckedCodes) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(E4M3::from_f32_saturating(1.0f), 0x38);
  EXPECT_EQ(E4M3::from_f32_saturating(448.0f), 0x7E);
  EXPECT_EQ(E4M3::from_f32_saturating(464.0f), 0x7E);
  EXPECT_EQ(E4M3::from_f32_saturating(500.0f), 0x7E);
  EXPECT_EQ(E4M3::from_f32_saturating(-inf), 0xFE);
  EXPECT_EQ(E4M3::from_f32_saturating(nan), 0x7F);
  EXPECT_EQ(E4M3::from_f32_saturating(0x1p-9f), 0x01);
  EXPECT_EQ(E4M3::from_f32_saturating(0x1p-10f), 0x00);  // the tie below it goes to even 0
  EXPECT_EQ(E4M3::from_f32_saturating(-0.0f), 0x80);
  EXPECT_EQ(E5M2::from_f32_saturating(1.0f), 0x3C);
  EXPECT_EQ(E5M2::from_f32_saturating(57344.0f), 0x7B);
  EXPECT_EQ(E5M2::from_f32_saturating(61440.0f), 0x7B);
  EXPECT_EQ(E5M2::from_f32_saturating(inf), 0x7B);
  EXPECT_EQ(E5M2::from_f32_saturating(nan), 0x7E);
  EXPECT_EQ(E4M3::to_f32(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(E4M3::to_f32(0xFF)));
  EXPECT_EQ(E5M2::to_f32(0x7C), inf);
}

// The codec divides by the scale first: 1.0 at scale 0.5 is 2.0 = 0.1000.000 = 0x40
// in E4M3, and decodes back to 2.0 * 0.5.
TEST(Fp8, CodecAppliesTheScale) {
  const quant::CodecParams half{0.5f};
  const float x = 1.0f;
  std::uint8_t code = 0;
  quant::Fp8E4M3::encode(&x, &code, half);
  EXPECT_EQ(code, 0x40);
  EXPECT_EQ(quant::Fp8E4M3::decode(&code, 0, half), 1.0f);
}

}  // namespace
}  // namespace kvfid::ref
