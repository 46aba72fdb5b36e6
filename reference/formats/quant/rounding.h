#pragma once
// Float-to-integer roundings the encoders need, from exact float operations only (no
// libm, whose roundf/rintf are not guaranteed identical on host and device).
#include "cuda/common/ieee.h"

namespace kvfid::quant {

// round(v), ties away from zero (C's roundf, ggml's choice), for |v| < 2^30. The
// truncation is exact and so is v - t (t and v share the exponent range and t keeps
// v's integer bits), so the comparison with 1/2 decides the tie exactly.
KVFID_HD int round_half_away(float v) {
  int t = int(v);  // truncates toward zero
  const float frac = v - float(t);
  if (frac >= 0.5f) ++t;
  if (frac <= -0.5f) --t;
  return t;
}

// round(v), ties to even (the IEEE default, numpy's and torch's choice), |v| < 2^30.
KVFID_HD int round_half_even(float v) {
  int t = int(v);
  const float frac = v - float(t);
  if (frac > 0.5f || (frac == 0.5f && (t & 1))) ++t;
  if (frac < -0.5f || (frac == -0.5f && (t & 1))) --t;
  return t;
}

KVFID_HD float abs_of(float v) { return v < 0.0f ? -v : v; }

}  // namespace kvfid::quant
