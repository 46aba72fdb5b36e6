#include "reference/metrics/error_budget.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

LogitStatistics with_kld(double kld) {
  LogitStatistics s;
  s.kld = {kld, 0};
  return s;
}

TEST(ErrorBudget, SharesOfAHandMadeBudget) {
  const ErrorBudget b = error_budget(with_kld(1e-3), with_kld(3e-3), with_kld(4.4e-3));
  EXPECT_DOUBLE_EQ(b.weights_share, 0.25);
  EXPECT_DOUBLE_EQ(b.kv_share, 0.75);
  EXPECT_DOUBLE_EQ(b.both_over_sum, 1.1);
  EXPECT_EQ(b.weights.kld.value, 1e-3);
  EXPECT_EQ(b.both.kld.value, 4.4e-3);
}

TEST(ErrorBudget, NoErrorAtAllHasNoShares) {
  const ErrorBudget b = error_budget(with_kld(0), with_kld(0), with_kld(0));
  EXPECT_TRUE(std::isnan(b.weights_share));
  EXPECT_TRUE(std::isnan(b.kv_share));
  EXPECT_TRUE(std::isnan(b.both_over_sum));
}

// The additivity the shares rest on, end to end. Uniform base over 4 tokens; the
// "weights" error moves logits by e(1, -1, 0, 0), the "KV" error by e(0, 0, 1, -1):
// uncorrelated under p. With KL = ln sum p exp(d) - sum p d and c = sinh^2(e/2):
//   KL_weights = KL_kv = ln((cosh e + 1)/2) = ln(1 + c),  KL_both = ln cosh e = ln(1 + 2c),
// so both_over_sum = ln(1 + 2c) / (2 ln(1 + c)) = 1 - e^2/8 + O(e^4).
TEST(ErrorBudget, UncorrelatedSmallErrorsAddUp) {
  constexpr double e = 0.01;
  const std::vector<double> base(3 * 4, 0.0);
  std::vector<double> weights = base, kv = base, both = base;
  for (int t = 0; t < 3; ++t) {
    weights[t * 4 + 0] = both[t * 4 + 0] = e;
    weights[t * 4 + 1] = both[t * 4 + 1] = -e;
    kv[t * 4 + 2] = both[t * 4 + 2] = e;
    kv[t * 4 + 3] = both[t * 4 + 3] = -e;
  }
  const std::vector<int> tokens = {0, 1, 2};
  const ErrorBudget b = error_budget(logit_statistics(base, weights, 4, tokens), logit_statistics(base, kv, 4, tokens),
                                     logit_statistics(base, both, 4, tokens));
  const double c = std::sinh(e / 2) * std::sinh(e / 2);
  const double expected = std::log1p(2 * c) / (2 * std::log1p(c));
  // A few ULPs on each side (sinh, the square, log1p, the division; the KLs in long
  // double rounded once): 32 double ULPs relative, allowing libm's last-digit spread.
  constexpr double kClosedForm = 32 * std::numeric_limits<double>::epsilon();
  EXPECT_NEAR(b.both_over_sum, expected, kClosedForm);
  EXPECT_NEAR(b.weights_share, 0.5, kClosedForm);
  // Second order holds: the departure from 1 is e^2/8 to leading order; within 1% of it.
  constexpr double kLeadingOrder = 0.01;
  EXPECT_NEAR(1 - b.both_over_sum, e * e / 8, kLeadingOrder * e * e / 8);
}

}  // namespace
}  // namespace kvfid::ref
