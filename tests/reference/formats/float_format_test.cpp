// round_to_format's binary32 fast path (numeric/convert.h) and its general path
// (minifloat_round) are the same rounding: every binary32 value of a sweep over all bit
// patterns, and the float64 values beside each midpoint, round alike.
#include "reference/formats/float_format.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include <gtest/gtest.h>

#include "tests/reference/formats/minifloat_saturating.h"

namespace kvfid::ref {
namespace {

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 8) == 0; }

TEST(FloatFormat, RoundToFormatIsMinifloatRound) {
  for (FloatFormat f : {FloatFormat::f16, FloatFormat::bf16}) {
    const MiniFloatSpec spec = f == FloatFormat::f16 ? kFp16 : kBf16;
    for (std::uint64_t i = 0; i < (1ull << 32); i += 251) {  // every exponent, both signs, Inf, NaN
      const std::uint32_t u = std::uint32_t(i);
      float x;
      std::memcpy(&x, &u, 4);
      ASSERT_TRUE(same(round_to_format(x, f), minifloat_round(x, spec))) << to_string(f) << " bits " << std::hex << u;
    }
    for (std::uint32_t code = 0; code <= test::minifloat_max_finite_code(spec); ++code) {  // every positive finite code
      const double v = minifloat_decode(code, spec), mid = v + ulp_of(v, f) / 2;
      for (double x : {mid, -mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e300)})
        ASSERT_TRUE(same(round_to_format(x, f), minifloat_round(x, spec))) << to_string(f) << " " << x;
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
