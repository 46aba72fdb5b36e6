#include "tests/cuda/common/log_softmax_reference.h"

#include <algorithm>
#include <cmath>

#include "cuda/common/log_softmax.h"
#include "tests/cuda/common/portable_math_bounds.h"

namespace kvfid::test {
using namespace kvfid::engine;  // the engine under test

namespace {

double ulp_f32(double v) {
  v = std::fabs(v);
  if (v < std::ldexp(1.0, -126)) return std::ldexp(1.0, -149);
  return std::ldexp(1.0, std::ilogb(v) - 23);
}

}  // namespace

LogSoftmaxReference log_softmax_reference(const float* x, int n) {
  const double u = std::ldexp(1.0, -24);
  const double smallest_normal = std::ldexp(1.0, -126);
  double m = x[0];
  for (int j = 1; j < n; ++j) m = std::max(m, double(x[j]));
  double S = 0, term_error = 0;
  for (int j = 0; j < n; ++j) {
    const double d = double(x[j]) - m;
    const double e = std::exp(d);
    S += e;
    const double relative = (1 + std::expm1(u * std::fabs(d))) * (1 + 2 * u * kExpMaxUlp) - 1;
    term_error += e * relative + (e < smallest_normal ? kExpSubnormalMaxUnits * std::ldexp(1.0, -149) : 0.0);
  }
  const double lse = std::log(S);
  // Roundings a term passes: its thread's adds, the butterfly's levels, the warp fold.
  constexpr int kButterflyLevels = 5;  // log2(kWarp)
  static_assert(1 << kButterflyLevels == engine::num::kWarp);
  const int depth = (n + engine::num::kLogSoftmaxThreads - 1) / engine::num::kLogSoftmaxThreads + kButterflyLevels +
                    (engine::num::kLogSoftmaxWarps - 1);
  const double gamma = depth * u / (1 - depth * u);
  const double sigma = (1 + term_error / S) * (1 + gamma) - 1;
  const double log_of_sum_error = -std::log1p(-sigma);
  const double log_error = log_of_sum_error + kLogMaxUlp * ulp_f32(lse + log_of_sum_error);

  LogSoftmaxReference r;
  r.exact.resize(n);
  r.bound.resize(n);
  for (int k = 0; k < n; ++k) {
    const double d = double(x[k]) - m;
    r.exact[k] = d - lse;
    const double before_last_rounding = u * std::fabs(d) + log_error;
    const double reference_error = std::ldexp(1.0, -52) * n * (1 + std::fabs(d) + lse);
    r.bound[k] = before_last_rounding + u * (std::fabs(r.exact[k]) + before_last_rounding) + reference_error;
    r.sum_bound += std::exp(r.exact[k]) * std::expm1(r.bound[k]);
  }
  r.sum_bound += std::ldexp(1.0, -52) * n;  // the float64 sum of exp(values) in the check
  return r;
}

}  // namespace kvfid::test
