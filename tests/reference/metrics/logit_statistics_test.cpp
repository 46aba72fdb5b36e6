#include "reference/metrics/logit_statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// The statistics sum in long double and round once to double, then go through an exp,
// a sqrt, a log or a division or two (each within 1 ULP); the closed forms below take
// as many double operations. 16 double ULPs, relative, covers both sides.
constexpr double kClosedForm = 16 * std::numeric_limits<double>::epsilon();

void expect_relative(double actual, double expected, double tolerance = kClosedForm) {
  EXPECT_NEAR(actual, expected, tolerance * std::fabs(expected)) << "expected " << expected;
}

// [T, vocab] from T rows.
std::vector<double> rows(const std::vector<std::vector<double>>& r) {
  std::vector<double> out;
  for (const auto& row : r) out.insert(out.end(), row.begin(), row.end());
  return out;
}

TEST(LogitStatistics, IdenticalRunsHaveNoDifference) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> logit(0.0, 2.0);
  constexpr int T = 12, vocab = 5;
  std::vector<double> base(T * vocab);
  for (double& v : base) v = logit(rng);
  std::vector<int> tokens(T);
  for (int t = 0; t < T; ++t) tokens[t] = (3 * t + 1) % vocab;
  const LogitStatistics s = logit_statistics(base, base, vocab, tokens);
  EXPECT_EQ(s.positions, T - 1);
  EXPECT_EQ(s.kld.value, 0.0);
  EXPECT_EQ(s.kld.standard_error, 0.0);
  EXPECT_EQ(s.kld_max, 0.0);
  EXPECT_EQ(s.dp.value, 0.0);
  EXPECT_EQ(s.dp_rms.value, 0.0);
  EXPECT_EQ(s.dp_rms.standard_error, 0.0);
  EXPECT_EQ(s.dp_max, 0.0);
  EXPECT_EQ(s.dp_min, 0.0);
  EXPECT_EQ(s.same_top.value, 1.0);
  EXPECT_EQ(s.same_top.standard_error, 0.0);
  EXPECT_EQ(s.ln_ppl_ratio.value, 0.0);
  EXPECT_EQ(s.ln_ppl_ratio.standard_error, 0.0);
  EXPECT_EQ(s.ppl_ratio.value, 1.0);
  EXPECT_EQ(s.ppl_difference.value, 0.0);
  EXPECT_EQ(s.ppl_test.value, s.ppl_base.value);
  expect_relative(s.ln_ppl_correlation, 1.0);
  for (const Quantile& q : s.kld_percentiles) EXPECT_EQ(q.value, 0.0) << q.level;
  for (const Quantile& q : s.dp_percentiles) EXPECT_EQ(q.value, 0.0) << q.level;
}

// Two positions of a two-token vocabulary:
//   t = 0: base and test both (1/2, 1/2), next token 0: KL 0, Δp 0, same top (both
//          pick the first of a tie), nll ln 2 on both sides.
//   t = 1: base (1/2, 1/2), test (1/4, 3/4) from logits (0, ln 3), next token 1:
//          KL = 1/2 ln(4/3), Δp = 3/4 - 1/2 = 1/4, top differs (0 against 1),
//          nll_base = ln 2, nll_test = ln(4/3).
// Every statistic follows by hand; for a sample {0, a} the mean is a/2 and the
// standard error |a|/2.
TEST(LogitStatistics, EveryStatisticOfATwoTokenCaseByHand) {
  const double ln3 = std::log(3.0);
  const std::vector<double> base = rows({{0, 0}, {0, 0}, {0, 0}});
  const std::vector<double> test = rows({{0, 0}, {0, ln3}, {0, 0}});
  const std::vector<int> tokens = {1, 0, 1};
  const LogitStatistics s = logit_statistics(base, test, 2, tokens);
  ASSERT_EQ(s.positions, 2);

  const double kl = 0.5 * std::log(4.0 / 3.0);
  EXPECT_EQ(s.kld_at[0], 0.0);
  expect_relative(s.kld_at[1], kl);
  expect_relative(s.kld.value, kl / 2);
  expect_relative(s.kld.standard_error, kl / 2);
  expect_relative(s.kld_max, kl);
  EXPECT_EQ(s.kld_min, 0.0);
  ASSERT_EQ(s.kld_percentiles.size(), kKldPercentileLevels.size());
  for (const Quantile& q : s.kld_percentiles) expect_relative(q.value, q.level / 100 * kl);  // position = fraction

  expect_relative(s.dp.value, 0.125);
  expect_relative(s.dp.standard_error, 0.125);
  expect_relative(s.dp_max, 0.25);
  EXPECT_EQ(s.dp_min, 0.0);
  for (const Quantile& q : s.dp_percentiles) expect_relative(q.value, q.level / 100 * 0.25);
  // RMS = sqrt((0 + 1/16) / 2); se(mean Δp^2) = 1/32, so se(RMS) = (1/32) / (2 RMS).
  const double rms = 0.25 / std::sqrt(2.0);
  expect_relative(s.dp_rms.value, rms);
  expect_relative(s.dp_rms.standard_error, (1.0 / 32) / (2 * rms));

  EXPECT_EQ(s.same_top_at, (std::vector<bool>{true, false}));
  EXPECT_EQ(s.same_top.value, 0.5);
  expect_relative(s.same_top.standard_error, 0.5);  // sqrt(1/2 * 1/2 / 1)

  // PPL(base) = exp(ln 2) with no spread; PPL(test) = exp((ln 2 + ln 4/3) / 2) = sqrt(8/3).
  expect_relative(s.ppl_base.value, 2.0);
  EXPECT_EQ(s.ppl_base.standard_error, 0.0);
  const double ppl_test = std::sqrt(8.0 / 3.0), half_ln_3_2 = std::log(1.5) / 2;
  expect_relative(s.ppl_test.value, ppl_test);
  expect_relative(s.ppl_test.standard_error, ppl_test * half_ln_3_2);
  // ln ratio: differences {0, ln(4/3) - ln 2 = -ln(3/2)}.
  expect_relative(s.ln_ppl_ratio.value, -half_ln_3_2);
  expect_relative(s.ln_ppl_ratio.standard_error, half_ln_3_2);
  expect_relative(s.ppl_ratio.value, std::sqrt(2.0 / 3.0));
  expect_relative(s.ppl_ratio.standard_error, std::sqrt(2.0 / 3.0) * half_ln_3_2);
  expect_relative(s.ppl_difference.value, ppl_test - 2);
  // The base has no spread, so the difference's error is the test's alone.
  expect_relative(s.ppl_difference.standard_error, ppl_test * half_ln_3_2);
  // nll_base is constant: no correlation exists.
  EXPECT_TRUE(std::isnan(s.ln_ppl_correlation));
}

// The statistics see distributions, not logits: shifting every row by its own constant
// (log-probabilities against logits) changes nothing beyond the last digits.
TEST(LogitStatistics, RowsMayBeLogitsOrLogProbabilities) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> logit(0.0, 2.0), shift(0.0, 30.0);
  constexpr int T = 16, vocab = 7;
  std::vector<double> base(T * vocab), test(T * vocab);
  for (std::size_t i = 0; i < base.size(); ++i) {
    base[i] = logit(rng);
    test[i] = base[i] + 0.3 * logit(rng);
  }
  std::vector<double> shifted_base = base, shifted_test = test;
  for (int t = 0; t < T; ++t) {
    const double b = shift(rng), x = shift(rng);
    for (int i = 0; i < vocab; ++i) {
      shifted_base[t * vocab + i] += b;
      shifted_test[t * vocab + i] += x;
    }
  }
  std::vector<int> tokens(T);
  for (int t = 0; t < T; ++t) tokens[t] = (5 * t + 2) % vocab;
  const LogitStatistics a = logit_statistics(base, test, vocab, tokens);
  const LogitStatistics b = logit_statistics(shifted_base, shifted_test, vocab, tokens);
  // A shift of up to ~100 costs its own rounding, 100 eps absolute on each logit; the
  // KL's differences and the nll's carry that much, relative to values of order 0.1-1.
  constexpr double kShiftTolerance = 1e-12;
  EXPECT_NEAR(a.kld.value, b.kld.value, kShiftTolerance);
  EXPECT_NEAR(a.ppl_test.value, b.ppl_test.value, kShiftTolerance * a.ppl_test.value);
  EXPECT_NEAR(a.ppl_base.value, b.ppl_base.value, kShiftTolerance * a.ppl_base.value);
  EXPECT_NEAR(a.dp.value, b.dp.value, kShiftTolerance);
  EXPECT_EQ(a.same_top.value, b.same_top.value);
}

// Logits far apart take no exp past overflow: base (1/2, 1/2), test from (0, 1000),
// next token 1: KL = 500 - ln 2 + ln(1 + e^-1000), nll_test = ln(1 + e^-1000) = 0 in
// double, Δp = 1 - 1/2.
TEST(LogitStatistics, FarApartLogitsStayFinite) {
  const LogitStatistics s =
      logit_statistics(rows({{0, 0}, {0, 0}}), rows({{0, 1000}, {0, 1000}}), 2, std::vector<int>{0, 1});
  expect_relative(s.kld.value, 500 - std::log(2.0));
  EXPECT_EQ(s.nll_test_at[0], 0.0);
  expect_relative(s.dp.value, 0.5);
  EXPECT_EQ(s.ppl_test.value, 1.0);
  EXPECT_TRUE(std::isnan(s.kld.standard_error));  // one position
  EXPECT_TRUE(std::isnan(s.same_top.standard_error));
}

TEST(LogitStatistics, PercentileLevelsAreLlamaCppsInItsOrder) {
  // As printed by llama.cpp's perplexity tool with --kl-divergence (tools/perplexity).
  EXPECT_EQ(std::vector<double>(kKldPercentileLevels.begin(), kKldPercentileLevels.end()),
            (std::vector<double>{99.9, 99.0, 95.0, 90.0, 50.0, 10.0, 5.0, 1.0, 0.1}));
  EXPECT_EQ(std::vector<double>(kDpPercentileLevels.begin(), kDpPercentileLevels.end()),
            (std::vector<double>{99.9, 99.0, 95.0, 90.0, 75.0, 50.0, 25.0, 10.0, 5.0, 1.0, 0.1}));
}

TEST(LogitStatistics, RejectsInputsThatAreNotTVocab) {
  const std::vector<double> two_by_two = {0, 0, 0, 0};
  EXPECT_THROW(logit_statistics(two_by_two, two_by_two, 2, std::vector<int>{0}), std::invalid_argument);
  EXPECT_THROW(logit_statistics(two_by_two, two_by_two, 3, std::vector<int>{0, 1}), std::invalid_argument);
  EXPECT_THROW(logit_statistics(two_by_two, std::vector<double>{0, 0, 0}, 2, std::vector<int>{0, 1}),
               std::invalid_argument);
  EXPECT_THROW(logit_statistics(two_by_two, two_by_two, 2, std::vector<int>{0, 2}), std::invalid_argument);
  const std::vector<double> with_nan = {0, 0, std::nan(""), 0};
  EXPECT_THROW(logit_statistics(two_by_two, with_nan, 2, std::vector<int>{0, 1}), std::invalid_argument);
  const std::vector<double> with_inf = {0, -std::numeric_limits<double>::infinity(), 0, 0};
  EXPECT_THROW(logit_statistics(with_inf, two_by_two, 2, std::vector<int>{0, 1}), std::invalid_argument);
}

// --- An independent recomputation, the way llama.cpp's tool does it: probabilities
// in double, KL as sum p (ln p - ln q), and one-pass sums (sum x, sum x^2, sum xy) for
// every standard error, correlation and covariance.

struct OnePass {
  double n = 0, a = 0, a2 = 0;
  void add(double x) {
    n += 1;
    a += x;
    a2 += x * x;
  }
  double mean() const { return a / n; }
  double standard_error() const { return std::sqrt((a2 / n - mean() * mean()) / (n - 1)); }
};

std::vector<double> naive_log_softmax(const double* x, int n) {
  double top = x[0];
  for (int i = 1; i < n; ++i) top = std::max(top, x[i]);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(x[i] - top);
  std::vector<double> out(n);
  for (int i = 0; i < n; ++i) out[i] = x[i] - top - std::log(sum);
  return out;
}

double type7(std::vector<double> v, double fraction) {
  std::sort(v.begin(), v.end());
  const double position = fraction * double(v.size() - 1);
  const double lower = std::floor(position);
  const std::size_t i = std::size_t(lower);
  return i + 1 < v.size() ? v[i] + (position - lower) * (v[i + 1] - v[i]) : v[i];
}

TEST(LogitStatistics, AgreesWithANaiveOnePassRecomputation) {
  SCOPED_TRACE(test::seed_trace());
  // Naive double forms lose about vocab * eps * max|ln p| (16 * 2.2e-16 * 10, 4e-14)
  // absolute on each KL of about 5e-3, and the one-pass ln-ratio error cancels
  // se_a^2 + se_b^2 - 2 cov with a correlation near 1 (about 1e3 times eps relative);
  // 1e-9 relative (to each statistic's own scale) leaves a wide margin over both.
  constexpr double kNaiveTolerance = 1e-9;
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> logit(0.0, 2.0), error(0.0, 0.1);
  std::uniform_int_distribution<int> token(0, 15);
  constexpr int T = 40, vocab = 16;
  std::vector<double> base(T * vocab), test(T * vocab);
  for (std::size_t i = 0; i < base.size(); ++i) {
    base[i] = logit(rng);
    test[i] = base[i] + error(rng);
  }
  std::vector<int> tokens(T);
  for (int& t : tokens) t = token(rng);

  OnePass nll, nll_base, kld, dp, dp2;
  double nll_cross = 0, same = 0;
  std::vector<double> klds, dps;
  for (int t = 0; t + 1 < T; ++t) {
    const std::vector<double> lb = naive_log_softmax(&base[t * vocab], vocab);
    const std::vector<double> lt = naive_log_softmax(&test[t * vocab], vocab);
    double kl = 0;
    for (int i = 0; i < vocab; ++i) kl += std::exp(lb[i]) * (lb[i] - lt[i]);
    const int next = tokens[t + 1];
    const double d = std::exp(lt[next]) - std::exp(lb[next]);
    nll.add(-lt[next]);
    nll_base.add(-lb[next]);
    nll_cross += lt[next] * lb[next];
    kld.add(kl);
    dp.add(d);
    dp2.add(d * d);
    klds.push_back(kl);
    dps.push_back(d);
    same += std::max_element(lb.begin(), lb.end()) - lb.begin() == std::max_element(lt.begin(), lt.end()) - lt.begin();
  }
  const double n = nll.n;
  const double cov = (nll_cross / n - nll.mean() * nll_base.mean()) / (n - 1);  // of the two means
  const double ppl = std::exp(nll.mean()), ppl_base = std::exp(nll_base.mean());
  const double ln_ratio_se = std::sqrt(nll.standard_error() * nll.standard_error() +
                                       nll_base.standard_error() * nll_base.standard_error() - 2 * cov);
  const double rms = std::sqrt(dp2.mean());
  const double same_top = same / n;

  const LogitStatistics s = logit_statistics(base, test, vocab, tokens);
  const auto close = [&](double actual, double expected, double scale) {
    EXPECT_NEAR(actual, expected, kNaiveTolerance * scale);
  };
  close(s.ppl_test.value, ppl, ppl);
  close(s.ppl_test.standard_error, ppl * nll.standard_error(), ppl * nll.standard_error());
  close(s.ppl_base.value, ppl_base, ppl_base);
  close(s.ppl_base.standard_error, ppl_base * nll_base.standard_error(), ppl_base * nll_base.standard_error());
  const double cor = cov / (nll.standard_error() * nll_base.standard_error());
  close(s.ln_ppl_correlation, cor, 1);
  close(s.ln_ppl_ratio.value, nll.mean() - nll_base.mean(), ln_ratio_se);
  close(s.ln_ppl_ratio.standard_error, ln_ratio_se, ln_ratio_se);
  close(s.ppl_ratio.value, ppl / ppl_base, 1);
  close(s.ppl_ratio.standard_error, ppl / ppl_base * ln_ratio_se, ln_ratio_se);
  const double diff_se = std::sqrt(ppl * ppl * nll.standard_error() * nll.standard_error() +
                                   ppl_base * ppl_base * nll_base.standard_error() * nll_base.standard_error() -
                                   2 * ppl * ppl_base * cov);
  close(s.ppl_difference.value, ppl - ppl_base, diff_se);
  close(s.ppl_difference.standard_error, diff_se, diff_se);
  close(s.kld.value, kld.mean(), kld.mean());
  close(s.kld.standard_error, kld.standard_error(), kld.standard_error());
  close(s.kld_max, *std::max_element(klds.begin(), klds.end()), kld.mean());
  close(s.kld_min, *std::min_element(klds.begin(), klds.end()), kld.mean());
  for (const Quantile& q : s.kld_percentiles) close(q.value, type7(klds, q.level / 100), kld.mean());
  close(s.dp.value, dp.mean(), rms);
  close(s.dp.standard_error, dp.standard_error(), dp.standard_error());
  for (const Quantile& q : s.dp_percentiles) close(q.value, type7(dps, q.level / 100), rms);
  close(s.dp_rms.value, rms, rms);
  close(s.dp_rms.standard_error, 0.5 / rms * dp2.standard_error(), dp2.standard_error() / rms);
  EXPECT_EQ(s.same_top.value, same_top);
  close(s.same_top.standard_error, std::sqrt(same_top * (1 - same_top) / (n - 1)), 1);
  // The case exercises what it should: a KL (about 1/2 Var(error) = 5e-3) far above
  // the roundings it is compared at.
  EXPECT_GT(kld.mean(), 1e-4);
}

}  // namespace
}  // namespace kvfid::ref
