#include "reference/metrics/gate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kvfid::ref {

double gate_bound(double baseline, double floor, GateOrder order) {
  if (!std::isfinite(baseline)) return std::numeric_limits<double>::quiet_NaN();
  const double factor = order == GateOrder::linear ? kGateFactor : kGateFactor * kGateFactor;
  return std::max(factor * baseline, floor);
}

bool within_bound(double value, double bound) { return value <= bound; }

double max_abs_floor(double max_abs_golden, FloatFormat format) {
  return kFloorUlps * ulp_of(max_abs_golden, format);
}

double relative_rms_floor(FloatFormat format) { return kFloorUlps * ulp_of(1.0, format); }

double kl_floor(double logits_max_abs_floor) { return 0.5 * logits_max_abs_floor * logits_max_abs_floor; }

}  // namespace kvfid::ref
