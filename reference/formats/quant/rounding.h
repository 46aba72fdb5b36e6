#pragma once
// Float-to-integer roundings the encoders need, from exact float operations only (no
// libm, whose roundf/rintf are not guaranteed identical on host and device).
//
// Every float has a defined result: NaN gives 0 and |v| >= 2^30 (Inf included)
// saturates to +-2^30. Encoders only meet these on input outside their domain (a NaN
// element, or a block so small that 1/d overflows to Inf), and a bare int(v) would be
// undefined behaviour there, where x86 (0x80000000) and CUDA (saturation) disagree:
// the saturation keeps host and device bytes identical. (2^30 also truncates to 0 in
// an int8 or a nibble, as x86's 0x80000000 does in ggml's own cast.)
#include "reference/numeric/ieee.h"

namespace kvfid::ref::quant {

inline constexpr float kRoundingRange = 0x1p30f;

KVFID_HD float abs_of(float v) { return v < 0.0f ? -v : v; }

// trunc(v) (toward zero) with the saturation above.
KVFID_HD int trunc_saturating(float v) {
  if (v != v) return 0;
  if (v >= kRoundingRange) return 1 << 30;
  if (v <= -kRoundingRange) return -(1 << 30);
  return int(v);
}

// round(v), ties away from zero (C's roundf, ggml's choice). Within the range the
// truncation is exact and so is v - t (t and v share the exponent range and t keeps
// v's integer bits), so the comparison with 1/2 decides the tie exactly.
KVFID_HD int round_half_away(float v) {
  int t = trunc_saturating(v);
  if (abs_of(v) >= kRoundingRange) return t;
  const float frac = v - float(t);  // NaN for NaN, whose t = 0 then stays
  if (frac >= 0.5f) ++t;
  if (frac <= -0.5f) --t;
  return t;
}

// round(v), ties to even (the IEEE default, numpy's and torch's choice).
KVFID_HD int round_half_even(float v) {
  int t = trunc_saturating(v);
  if (abs_of(v) >= kRoundingRange) return t;
  const float frac = v - float(t);
  if (frac > 0.5f || (frac == 0.5f && (t & 1))) ++t;
  if (frac < -0.5f || (frac == -0.5f && (t & 1))) --t;
  return t;
}

}  // namespace kvfid::ref::quant
