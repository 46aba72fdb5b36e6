#include "reference/metrics/logit_statistics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

#include "reference/metrics/logit_metrics.h"

namespace kvfid::ref {

namespace {

using Real = long double;

// ln sum_i exp(row_i), the largest term factored out so no exp overflows.
Real log_sum_exp(const double* row, std::size_t n) {
  const double top = *std::max_element(row, row + n);
  Real sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(Real(row[i]) - top);
  return top + std::log(sum);
}

template <std::size_t N>
std::vector<Quantile> percentiles(std::span<const double> sorted, const std::array<double, N>& levels) {
  std::vector<Quantile> out;
  for (double level : levels) out.push_back({level, percentile_of_sorted(sorted, level / 100)});
  return out;
}

void check_inputs(std::span<const double> base, std::span<const double> test, int vocab,
                  std::span<const int> tokens) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("logit_statistics: " + what); };
  if (tokens.size() < 2) fail("needs at least 2 tokens (one predicted position)");
  if (vocab <= 0) fail("vocab must be positive");
  const std::size_t values = tokens.size() * std::size_t(vocab);
  if (base.size() != values || test.size() != values) fail("log-probabilities must be [T, vocab]");
  for (int token : tokens)
    if (token < 0 || token >= vocab) fail("token " + std::to_string(token) + " outside the vocabulary");
  for (std::size_t i = 0; i < values; ++i)
    if (!std::isfinite(base[i]) || !std::isfinite(test[i])) fail("non-finite value at flat index " + std::to_string(i));
}

}  // namespace

LogitStatistics logit_statistics(std::span<const double> base_logprobs, std::span<const double> test_logprobs,
                                 int vocab, std::span<const int> tokens) {
  check_inputs(base_logprobs, test_logprobs, vocab, tokens);
  const std::size_t n = std::size_t(vocab), positions = tokens.size() - 1;
  LogitStatistics s;
  s.positions = int(positions);
  std::vector<double> nll_difference(positions), dp_squared(positions);  // [T - 1] each
  for (std::size_t t = 0; t < positions; ++t) {
    const double* base = base_logprobs.data() + t * n;  // [vocab]
    const double* test = test_logprobs.data() + t * n;  // [vocab]
    const std::size_t next = std::size_t(tokens[t + 1]);
    const Real nll_base = log_sum_exp(base, n) - base[next];
    const Real nll_test = log_sum_exp(test, n) - test[next];
    // p_test - p_base = p_base (exp(ln p_test - ln p_base) - 1): no cancellation
    // between two nearly equal probabilities.
    const Real dp = std::exp(-nll_base) * std::expm1(nll_base - nll_test);
    s.kld_at.push_back(kl_divergence_of_logits(base, test, n));
    s.dp_at.push_back(double(dp));
    s.nll_base_at.push_back(double(nll_base));
    s.nll_test_at.push_back(double(nll_test));
    s.same_top_at.push_back(argmax(base, n) == argmax(test, n));
    nll_difference[t] = double(nll_test - nll_base);
    dp_squared[t] = double(dp * dp);
  }

  const Estimate nll_test = mean_with_standard_error(s.nll_test_at);
  const Estimate nll_base = mean_with_standard_error(s.nll_base_at);
  s.ppl_test = {std::exp(nll_test.value), std::exp(nll_test.value) * nll_test.standard_error};
  s.ppl_base = {std::exp(nll_base.value), std::exp(nll_base.value) * nll_base.standard_error};
  s.ln_ppl_correlation = pearson_correlation(s.nll_test_at, s.nll_base_at);
  s.ln_ppl_ratio = mean_with_standard_error(nll_difference);
  const double ratio = std::exp(s.ln_ppl_ratio.value);
  s.ppl_ratio = {ratio, ratio * s.ln_ppl_ratio.standard_error};
  // d(PPL_test - PPL_base) = PPL_test dm_test - PPL_base dm_base to first order, so its
  // variance (covariance included) is that of the mean of the per-position combination.
  std::vector<double> linearised(positions);  // [T - 1]
  for (std::size_t t = 0; t < positions; ++t)
    linearised[t] = s.ppl_test.value * s.nll_test_at[t] - s.ppl_base.value * s.nll_base_at[t];
  s.ppl_difference = {s.ppl_test.value - s.ppl_base.value, mean_with_standard_error(linearised).standard_error};

  std::vector<double> sorted = s.kld_at;
  std::sort(sorted.begin(), sorted.end());
  s.kld = mean_with_standard_error(s.kld_at);
  s.kld_max = sorted.back();
  s.kld_min = sorted.front();
  s.kld_percentiles = percentiles(sorted, kKldPercentileLevels);

  sorted = s.dp_at;
  std::sort(sorted.begin(), sorted.end());
  s.dp = mean_with_standard_error(s.dp_at);
  s.dp_max = sorted.back();
  s.dp_min = sorted.front();
  s.dp_percentiles = percentiles(sorted, kDpPercentileLevels);
  const Estimate mean_square = mean_with_standard_error(dp_squared);
  const double rms = std::sqrt(mean_square.value);
  // With RMS 0 every Δp is 0, so se(mean Δp^2) is 0 too and so is the RMS's.
  s.dp_rms = {rms, rms > 0 ? mean_square.standard_error / (2 * rms) : 0.0};

  const double same = double(std::count(s.same_top_at.begin(), s.same_top_at.end(), true)) / double(positions);
  s.same_top = {same, positions >= 2 ? std::sqrt(same * (1 - same) / double(positions - 1))
                                     : std::numeric_limits<double>::quiet_NaN()};
  return s;
}

}  // namespace kvfid::ref
