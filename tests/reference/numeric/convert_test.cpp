// The engine's FP16/BF16 conversions against the exact codecs of reference/formats.
#include "reference/numeric/convert.h"

#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"

namespace kvfid::ref {
namespace {

float as_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bool same_value(float a, double b) { return (std::isnan(a) && std::isnan(b)) || (a == b && std::signbit(a) == std::signbit(b)); }

// Every one of the 2^16 codes decodes to the exact value (NaN stays NaN).
TEST(EngineConvert, DecodeEveryCode) {
  for (std::uint32_t code = 0; code < 65536; ++code) {
    ASSERT_TRUE(same_value(num::f16_to_f32(std::uint16_t(code)), f16_to_double(std::uint16_t(code)))) << "f16 " << code;
    ASSERT_TRUE(same_value(num::bf16_to_f32(std::uint16_t(code)), bf16_to_double(std::uint16_t(code)))) << "bf16 " << code;
  }
}

// Encoding matches RNE of the float's exact value: every finite code round-trips, and
// the float neighbours of every midpoint between adjacent codes (the tie itself when
// it is a float, which it always is) round the right way.
void check_encode(float f, std::uint16_t (*engine)(float), MiniFloatSpec spec) {
  if (std::isnan(f)) {
    const std::uint16_t h = engine(f);
    ASSERT_TRUE(std::isnan(minifloat_decode(h, spec))) << "NaN must stay NaN";
    ASSERT_EQ(h >> 15, std::signbit(f) ? 1 : 0);
    return;
  }
  ASSERT_EQ(engine(f), minifloat_encode_rne(double(f), spec)) << "float bits " << std::hex << num::bits_of(f);
}

TEST(EngineConvert, EncodeAroundEveryMidpoint) {
  struct Case {
    MiniFloatSpec spec;
    std::uint16_t (*engine)(float);
  };
  for (Case c : {Case{kFp16, num::f32_to_f16}, Case{kBf16, num::f32_to_bf16}}) {
    for (std::uint32_t code = 0; code < 65536; ++code) {
      const double v = minifloat_decode(code, c.spec);
      if (!std::isfinite(v)) continue;
      check_encode(float(v), c.engine, c.spec);
      const double next = minifloat_decode(code + 1 < 65536 ? code + 1 : code, c.spec);
      // The midpoint to the next code of the same sign (or to the overflow threshold).
      const double upper = std::isfinite(next) ? next : v + (v - minifloat_decode(code - 1, c.spec));
      const float mid = float((v + upper) / 2);  // exact: a float has more bits than both formats
      ASSERT_EQ(double(mid), (v + upper) / 2);
      for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, mid * 2)}) check_encode(f, c.engine, c.spec);
    }
  }
}

// A deterministic sweep over all float bit patterns (every 257th: all exponents, many
// significands, both signs, subnormals, Inf and NaN).
TEST(EngineConvert, EncodeSweep) {
  for (std::uint64_t i = 0; i < (1ull << 32); i += 257) {
    const float f = as_float(std::uint32_t(i));
    check_encode(f, num::f32_to_f16, kFp16);
    check_encode(f, num::f32_to_bf16, kBf16);
  }
}

}  // namespace
}  // namespace kvfid::ref
