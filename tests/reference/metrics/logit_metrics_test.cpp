#include "reference/metrics/logit_metrics.h"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

// The KL is computed in long double and rounded once to double; the inputs carry one
// double rounding (log 3), whose effect on these KLs is below one double ULP. 8 double
// ULPs of the result leaves room for the few long double operations in between.
constexpr double kFewDoubleUlps = 8 * std::numeric_limits<double>::epsilon();

TEST(LogitMetrics, IdenticalDistributionsHaveZeroKl) {
  const double logits[] = {1.5, -2, 0.25, 7};
  EXPECT_EQ(kl_divergence_of_logits(logits, logits, 4), 0.0);
}

TEST(LogitMetrics, KlIgnoresAConstantShiftOfTheLogits) {
  const double golden[] = {1, 2, 3};
  const double shifted[] = {1001, 1002, 1003};
  EXPECT_EQ(kl_divergence_of_logits(golden, shifted, 3), 0.0);
}

// p = (1/2, 1/2) from logits (0, 0); q = (1/4, 3/4) from logits (0, ln 3).
// KL(p || q) = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3); the other direction,
// KL(q || p) = 1/4 ln(1/2) + 3/4 ln(3/2), differs, so the direction is checked too.
TEST(LogitMetrics, KlOfTwoPointDistributionsMatchesTheClosedForm) {
  const double p_logits[] = {0, 0};
  const double q_logits[] = {0, std::log(3.0)};
  const double expected = 0.5 * std::log(4.0 / 3.0);
  EXPECT_NEAR(kl_divergence_of_logits(p_logits, q_logits, 2), expected, kFewDoubleUlps * expected);
  const double reverse = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  EXPECT_NEAR(kl_divergence_of_logits(q_logits, p_logits, 2), reverse, kFewDoubleUlps * reverse);
}

// Far-apart logits take the log-sum-exp path: p = (1/2, 1/2), q from (0, 50):
// KL = ln(1/2) + ln(1 + e^50) - 25 = 25 - ln 2 + ln(1 + e^-50).
TEST(LogitMetrics, KlOfFarApartDistributionsMatchesTheClosedForm) {
  const double p_logits[] = {0, 0};
  const double q_logits[] = {0, 50};
  const double expected = 25 - std::log(2.0) + std::log1p(std::exp(-50.0));
  EXPECT_NEAR(kl_divergence_of_logits(p_logits, q_logits, 2), expected, kFewDoubleUlps * expected);
}

// For small logit errors d, KL(p || q) = 1/2 Var_p(d) + O(d^3): the quadratic law the
// gate's k^2 rests on. With |d| <= 1e-6 the cubic term is below 1e-6 of the quadratic
// one; 1e-4 relative leaves room for that and for the rounding of Var_p in double.
TEST(LogitMetrics, SmallErrorsGiveHalfTheVarianceOfTheError) {
  SCOPED_TRACE(test::seed_trace());
  constexpr double kSecondOrderTolerance = 1e-4;
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> logit(0.0, 3.0);
  std::uniform_real_distribution<double> error(-1e-6, 1e-6);
  constexpr int n = 64;
  double g[n], x[n], d[n];
  for (int i = 0; i < n; ++i) {
    g[i] = logit(rng);
    x[i] = g[i] + error(rng);
    d[i] = x[i] - g[i];
  }
  double top = g[0];
  for (double v : g) top = std::max(top, v);
  double z = 0, mean = 0, second = 0;
  for (int i = 0; i < n; ++i) z += std::exp(g[i] - top);
  for (int i = 0; i < n; ++i) mean += std::exp(g[i] - top) / z * d[i];
  for (int i = 0; i < n; ++i) second += std::exp(g[i] - top) / z * (d[i] - mean) * (d[i] - mean);
  const double expected = 0.5 * second;
  EXPECT_NEAR(kl_divergence_of_logits(g, x, n), expected, kSecondOrderTolerance * expected);
}

TEST(LogitMetrics, MeanAndMaxOverPositions) {
  // Position 0 identical, position 1 the two-point case above.
  const TapTensor golden = make_tap("logits", {2, 2}, {0, 0, 0, 0});
  const TapTensor candidate = make_tap("logits", {2, 2}, {0, 0, 0, std::log(3.0)});
  const LogitMetrics m = logit_metrics(golden, candidate);
  const double kl = 0.5 * std::log(4.0 / 3.0);
  EXPECT_NEAR(m.kl_max, kl, kFewDoubleUlps * kl);
  EXPECT_EQ(m.kl_max_position, 1);
  EXPECT_NEAR(m.kl_mean, kl / 2, kFewDoubleUlps * kl);
  // |dp| = |1/2 - 3/4| at [1, 1] (and at [1, 0]; the first is reported).
  EXPECT_NEAR(m.max_dp, 0.25, kFewDoubleUlps);
  EXPECT_EQ(m.max_dp_at, 2);
}

TEST(LogitMetrics, TopOneAgreementIsTheFractionOfPositionsWhoseArgmaxAgrees) {
  const TapTensor golden = make_tap("logits", {4, 3}, {3, 1, 0,  0, 2, 1,  1, 0, 5,  0, 0, 1});
  const TapTensor candidate = make_tap("logits", {4, 3}, {3, 1, 0,  0, 2, 3,  1, 0, 5,  0, 0, 1});
  const LogitMetrics m = logit_metrics(golden, candidate);
  EXPECT_EQ(m.top1_agreement, 0.75);
  EXPECT_EQ(logit_metrics(golden, golden).top1_agreement, 1.0);
  EXPECT_EQ(logit_metrics(golden, golden).max_dp, 0.0);
}

}  // namespace
}  // namespace kvfid::ref
