#include "reference/metrics/drift_metrics.h"

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// KL by its definition, sum_i p_i (ln p_i - ln q_i), in long double: a second formula
// for the shifted expm1/log-sum-exp form the metric uses.
long double kl_by_definition(const std::vector<double>& g, const std::vector<double>& x) {
  auto log_softmax = [](const std::vector<double>& v) {
    long double top = v[0], sum = 0;
    for (double e : v) top = std::max<long double>(top, e);
    for (double e : v) sum += std::exp((long double)e - top);
    std::vector<long double> out;
    for (double e : v) out.push_back((long double)e - top - std::log(sum));
    return out;
  };
  const auto lp = log_softmax(g), lq = log_softmax(x);
  long double kl = 0;
  for (std::size_t i = 0; i < g.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return kl;
}

// Logit errors of 1e-2 give KLs near 1e-5; the definition's cancellation (sum of
// terms of size 1e-2 down to 1e-5) loses about 3 of long double's 19 digits, so the two
// formulas agree to 1e-12 relative with a wide margin (long double epsilon ~1e-19).
constexpr double kFormulaAgreement = 1e-12;

TEST(DriftMetrics, NextTokenDriftMatchesTheDefinitionOfKl) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> logit(0, 3), error(0, 1e-2);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> g(64), x(64);
    for (std::size_t i = 0; i < g.size(); ++i) x[i] = (g[i] = logit(rng)) + error(rng);
    const NextTokenDrift d = next_token_drift(g.data(), x.data(), g.size());
    const double expected = double(kl_by_definition(g, x));
    ASSERT_GT(expected, 0);
    EXPECT_NEAR(d.kl, expected, kFormulaAgreement * expected);
  }
}

TEST(DriftMetrics, MaxLogitErrorAndTop1) {
  const double golden[] = {0.5, 3.0, 3.0, -1.0};
  const double candidate[] = {0.25, 2.0, 3.5, -1.0};
  const NextTokenDrift d = next_token_drift(golden, candidate, 4);
  EXPECT_EQ(d.max_abs_logit_error, 1.0);  // |2.0 - 3.0|
  EXPECT_EQ(d.golden_top1, 1);            // tie at 3.0: the first index
  EXPECT_EQ(d.candidate_top1, 2);
  EXPECT_FALSE(d.top1_agrees());
  EXPECT_GT(d.kl, 0);
}

TEST(DriftMetrics, IdenticalLogitsHaveNoDrift) {
  const double logits[] = {1, -2, 7, 7.5};
  const NextTokenDrift d = next_token_drift(logits, logits, 4);
  EXPECT_EQ(d.kl, 0.0);
  EXPECT_EQ(d.max_abs_logit_error, 0.0);
  EXPECT_TRUE(d.top1_agrees());
  EXPECT_EQ(d.golden_top1, 3);
}

TEST(DriftMetrics, FirstBitDifferenceFindsOneFlippedBit) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::uniform_real_distribution<float> value(-10, 10);
  std::vector<float> a(1000);
  for (float& v : a) v = value(rng);
  EXPECT_FALSE(first_bit_difference(a, a).has_value());
  for (std::size_t at : {std::size_t(0), std::size_t(417), a.size() - 1}) {
    std::vector<float> b = a;
    b[at] = std::nextafter(b[at], std::numeric_limits<float>::infinity());  // the last significand bit
    const auto d = first_bit_difference(a, b);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, at);
  }
}

TEST(DriftMetrics, FirstBitDifferenceSeesSignedZerosAndLengths) {
  using Row = std::vector<float>;
  EXPECT_EQ(first_bit_difference(Row{1.0f, 0.0f}, Row{1.0f, -0.0f}), std::optional<std::size_t>(1));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(first_bit_difference(Row{nan}, Row{nan}).has_value());  // the same bits
  EXPECT_EQ(first_bit_difference(Row{1.0f, 2.0f}, Row{1.0f}), std::optional<std::size_t>(1));
}

}  // namespace
}  // namespace kvfid::ref
