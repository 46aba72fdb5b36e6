#pragma once
// How far one tap is from its golden, value by value. Only for taps that passed the
// gross checks (same shape, all finite).
#include <cstdint>

#include "reference/formats/float_format.h"
#include "reference/golden/taps.h"

namespace kvfid::ref {

struct TapError {
  double max_abs = 0;             // max |x - g|
  std::int64_t max_abs_at = 0;    // flat index where it occurs (the first, on ties)
  double max_ulps = 0;            // max |x - g| / ulp_of(g, format): ULPs at the golden value
  std::int64_t max_ulps_at = 0;
  double nmse = 0;                // sum (x-g)^2 / sum g^2; 0 when both are all zero, +Inf when only g is
  double max_abs_golden = 0;      // max |g|, the scale the gate's floors are taken at
};

// Throws std::invalid_argument when the value counts differ (a caller's bug: the gross
// checks catch shape mismatches first).
TapError tap_error(const TapTensor& golden, const TapTensor& tap, FloatFormat ulp_format);

// The format a tap's ULPs are counted in: the KV storage format for k and v taps (what
// the cache holds), FP32 for every other activation.
FloatFormat ulp_format_of_tap(const std::string& tap_name, FloatFormat kv_format);

}  // namespace kvfid::ref
