#pragma once
// OCP's saturating conversion to a minifloat, built on the library's RNE encoder: a value
// that would round beyond the largest finite value (Inf included) becomes the largest
// finite value of its sign; NaN stays NaN. The oracle the FP8 codecs' own saturating
// encoders (reference/formats/quant/fp8.h) are tested against; no library code needs it
// (it left reference/formats/minifloat.h for that reason).
#include <cmath>
#include <cstdint>

#include "reference/formats/minifloat.h"

namespace kvfid::test {

// The code of the largest finite value (positive): all-ones exponent and mantissa but
// the NaN code (finite_only), or the exponent below the Inf/NaN one.
inline std::uint32_t minifloat_max_finite_code(ref::MiniFloatSpec s) {
  const std::uint32_t exp_all_ones = (1u << s.exp_bits) - 1, man_all_ones = (1u << s.man_bits) - 1;
  return s.finite_only ? (exp_all_ones << s.man_bits) | (man_all_ones - 1)
                       : ((exp_all_ones - 1) << s.man_bits) | man_all_ones;
}

inline std::uint32_t minifloat_encode_saturating(double x, ref::MiniFloatSpec s) {
  const std::uint32_t code = ref::minifloat_encode_rne(x, s);
  if (std::isnan(x) || std::isfinite(ref::minifloat_decode(code, s))) return code;
  const std::uint32_t sign = std::uint32_t(1) << (s.exp_bits + s.man_bits);
  return (std::signbit(x) ? sign : 0u) | minifloat_max_finite_code(s);
}

}  // namespace kvfid::test
