#include "reference/metrics/gross_check.h"

#include <cmath>
#include <cstdint>

#include "reference/metrics/tensor_index.h"

namespace kvfid::ref {

namespace {

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + "]";
}

bool all_zero(const std::vector<double>& values) {
  for (double v : values)
    if (v != 0) return false;
  return true;
}

}  // namespace

std::string to_string(GrossKind kind) {
  switch (kind) {
    case GrossKind::missing: return "missing";
    case GrossKind::shape_mismatch: return "shape";
    case GrossKind::non_finite: return "nan_inf";
    case GrossKind::all_zero: return "all_zero";
  }
  return "?";
}

std::vector<GrossFinding> gross_check_tap(const std::string& subject, const TapTensor& golden,
                                          const TapTensor* tap) {
  if (!tap) {
    const bool is_logits = golden.name == "logits";
    return {{subject, golden.name, GrossKind::missing,
             is_logits ? "no logits tap: nothing can be judged" : "tap absent; not compared", is_logits}};
  }
  if (tap->shape != golden.shape || tap->values.size() != golden.values.size())
    return {{subject, golden.name, GrossKind::shape_mismatch,
             "shape " + shape_string(tap->shape) + ", golden " + shape_string(golden.shape), true}};

  std::int64_t nans = 0, infs = 0, first = -1;
  for (std::size_t i = 0; i < tap->values.size(); ++i) {
    const double v = tap->values[i];
    if (std::isnan(v)) ++nans;
    if (std::isinf(v)) ++infs;
    if (!std::isfinite(v) && first < 0) first = std::int64_t(i);
  }
  if (nans + infs > 0)
    return {{subject, golden.name, GrossKind::non_finite,
             std::to_string(nans) + " NaN and " + std::to_string(infs) + " Inf among " +
                 std::to_string(tap->values.size()) + " values, first at " + format_index(tap->shape, first),
             true}};
  if (all_zero(tap->values) && !all_zero(golden.values))
    return {{subject, golden.name, GrossKind::all_zero, "all values are zero; the golden's are not", true}};
  return {};
}

}  // namespace kvfid::ref
