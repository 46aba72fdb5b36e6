#include "reference/metrics/logit_metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace kvfid::ref {

namespace {

using Real = long double;

// Softmax with the maximum subtracted first, so no exp overflows.
std::vector<Real> softmax(const double* logits, std::size_t n) {
  const double top = *std::max_element(logits, logits + n);
  std::vector<Real> p(n);  // [n]
  Real sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += p[i] = std::exp(Real(logits[i]) - top);
  for (auto& v : p) v /= sum;
  return p;
}

}  // namespace

std::size_t argmax(const double* v, std::size_t n) { return std::size_t(std::max_element(v, v + n) - v); }

double kl_divergence_of_logits(const double* golden, const double* candidate, std::size_t n) {
  // With d_i = x_i - g_i and p = softmax(g):  log p_i - log q_i = lse(x) - lse(g) - d_i, so
  //   KL(p || q) = log sum_i p_i exp(d_i) - sum_i p_i d_i.
  // Shifting d by its p-mean m (softmax ignores constant shifts) leaves
  //   KL = log sum_i p_i exp(d_i - m),
  // a small number computed directly instead of as the difference of two larger ones.
  if (n == 0) return 0;
  const std::vector<Real> p = softmax(golden, n);  // [n]
  Real mean_shift = 0;
  for (std::size_t i = 0; i < n; ++i) mean_shift += p[i] * (Real(candidate[i]) - Real(golden[i]));
  Real largest = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] > 0) largest = std::max(largest, Real(candidate[i]) - Real(golden[i]) - mean_shift);
  Real kl;
  if (largest <= 1) {
    // Small shifts: sum p_i expm1(.) keeps the digits that exp(.) - 1 would lose.
    Real s = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (p[i] > 0) s += p[i] * std::expm1(Real(candidate[i]) - Real(golden[i]) - mean_shift);
    kl = std::log1p(s);
  } else {
    // Large shifts: log-sum-exp with the largest term factored out, so none overflows.
    Real s = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (p[i] > 0) s += p[i] * std::exp(Real(candidate[i]) - Real(golden[i]) - mean_shift - largest);
    kl = largest + std::log(s);
  }
  // KL >= 0 (Gibbs' inequality); a negative result is rounding at the last digits.
  return double(std::max(kl, Real(0)));
}

LogitMetrics logit_metrics(const TapTensor& golden, const TapTensor& candidate) {
  if (golden.shape.size() != 2 || candidate.shape != golden.shape || golden.values.size() != candidate.values.size())
    throw std::invalid_argument("logit_metrics: logits must be [T, vocab] and of the same shape");
  const std::size_t positions = std::size_t(golden.shape[0]), vocab = std::size_t(golden.shape[1]);
  LogitMetrics m;
  if (positions == 0 || vocab == 0) return m;
  Real kl_sum = 0;
  std::size_t agreeing = 0;
  for (std::size_t t = 0; t < positions; ++t) {
    const double* g = golden.values.data() + t * vocab;     // [vocab]
    const double* x = candidate.values.data() + t * vocab;  // [vocab]
    const double kl = kl_divergence_of_logits(g, x, vocab);
    kl_sum += kl;
    if (kl > m.kl_max) {
      m.kl_max = kl;
      m.kl_max_position = std::int64_t(t);
    }
    if (argmax(g, vocab) == argmax(x, vocab)) ++agreeing;
    const std::vector<Real> p = softmax(g, vocab), q = softmax(x, vocab);  // [vocab] each
    for (std::size_t i = 0; i < vocab; ++i) {
      const double dp = double(std::fabs(p[i] - q[i]));
      if (dp > m.max_dp) {
        m.max_dp = dp;
        m.max_dp_at = std::int64_t(t * vocab + i);
      }
    }
  }
  m.kl_mean = double(kl_sum / Real(positions));
  m.top1_agreement = double(agreeing) / double(positions);
  return m;
}

}  // namespace kvfid::ref
