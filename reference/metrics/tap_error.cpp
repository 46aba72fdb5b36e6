#include "reference/metrics/tap_error.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace kvfid::ref {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

FloatFormat ulp_format_of_tap(const std::string& tap_name, FloatFormat kv_format) {
  const bool layer_tap = tap_name.rfind("layers.", 0) == 0;
  return layer_tap && (ends_with(tap_name, ".k") || ends_with(tap_name, ".v")) ? kv_format : FloatFormat::f32;
}

TapError tap_error(const TapTensor& golden, const TapTensor& tap, FloatFormat ulp_format) {
  if (golden.values.size() != tap.values.size())
    throw std::invalid_argument("tap_error: '" + golden.name + "' value counts differ");
  TapError e;
  // Sums of squares in long double: thousands of terms, and the ratio of two of them
  // should not carry the summation's rounding.
  long double squared_error = 0, squared_golden = 0;
  for (std::size_t i = 0; i < golden.values.size(); ++i) {
    const double g = golden.values[i];
    const double diff = std::fabs(tap.values[i] - g);
    const double ulps = diff / ulp_of(g, ulp_format);
    if (diff > e.max_abs) {
      e.max_abs = diff;
      e.max_abs_at = std::int64_t(i);
    }
    if (ulps > e.max_ulps) {
      e.max_ulps = ulps;
      e.max_ulps_at = std::int64_t(i);
    }
    e.max_abs_golden = std::fmax(e.max_abs_golden, std::fabs(g));
    squared_error += (long double)diff * diff;
    squared_golden += (long double)g * g;
  }
  if (squared_golden > 0)
    e.nmse = double(squared_error / squared_golden);
  else
    e.nmse = squared_error == 0 ? 0.0 : std::numeric_limits<double>::infinity();
  return e;
}

}  // namespace kvfid::ref
