#include "reference/metrics/sample_stats.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>

namespace kvfid::ref {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

long double mean_of(std::span<const double> x) {
  long double sum = 0;
  for (double v : x) sum += v;
  return sum / (long double)x.size();
}

}  // namespace

Estimate mean_with_standard_error(std::span<const double> x) {
  if (x.empty()) return {kNaN, kNaN};
  const long double mean = mean_of(x);
  if (x.size() < 2) return {double(mean), kNaN};
  long double squares = 0;
  for (double v : x) squares += (v - mean) * (v - mean);
  const long double n = (long double)x.size();
  const long double sample_variance = squares / (n - 1);
  return {double(mean), double(std::sqrt(sample_variance / n))};
}

double percentile_of_sorted(std::span<const double> sorted, double fraction) {
  if (sorted.empty()) throw std::invalid_argument("percentile_of_sorted: empty sample");
  if (!(fraction >= 0 && fraction <= 1)) throw std::invalid_argument("percentile_of_sorted: fraction outside [0, 1]");
  const double position = fraction * double(sorted.size() - 1);
  const std::size_t below = std::size_t(position);
  if (below + 1 >= sorted.size()) return sorted.back();
  const double weight = position - double(below);
  // Equal neighbours give exactly their value ((1 - w) a + w a can round away from a).
  const double a = sorted[below], b = sorted[below + 1];
  return a == b ? a : (1 - weight) * a + weight * b;
}

double pearson_correlation(std::span<const double> a, std::span<const double> b) {
  if (a.size() != b.size()) throw std::invalid_argument("pearson_correlation: sample sizes differ");
  if (a.size() < 2) return kNaN;
  const long double mean_a = mean_of(a), mean_b = mean_of(b);
  long double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const long double da = a[i] - mean_a, db = b[i] - mean_b;
    ab += da * db;
    aa += da * da;
    bb += db * db;
  }
  if (aa == 0 || bb == 0) return kNaN;
  return double(ab / std::sqrt(aa * bb));
}

}  // namespace kvfid::ref
