#include "reference/metrics/drift_budget.h"

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

TEST(DriftErrorBudget, SharesAreFractionsOfTheSumOfSingleSources) {
  const DriftErrorBudget b = attribute_error({{"weights", 1.0, 0.5}, {"kv", 3.0, 1.0}, {"arithmetic", 0.0, 0.5}},
                                        {"all", 5.0, 1.5});
  ASSERT_EQ(b.sources.size(), 3u);
  EXPECT_EQ(b.sources[0].entry.source, "weights");
  EXPECT_EQ(b.sources[0].kl_share, 0.25);
  EXPECT_EQ(b.sources[1].kl_share, 0.75);
  EXPECT_EQ(b.sources[2].kl_share, 0.0);
  EXPECT_EQ(b.sources[0].logit_error_share, 0.25);
  EXPECT_EQ(b.sources[1].logit_error_share, 0.5);
  EXPECT_EQ(b.combined.kl, 5.0);
  EXPECT_EQ(b.kl_sum_over_combined, 0.8);                 // 4 / 5: the whole is worse than its parts
  EXPECT_EQ(b.logit_error_sum_over_combined, 2.0 / 1.5);  // max errors are sub-additive
}

TEST(DriftErrorBudget, NoErrorAnywhereGivesZeroSharesAndNoRatio) {
  const DriftErrorBudget b = attribute_error({{"weights", 0, 0}, {"kv", 0, 0}}, {"all", 0, 0});
  EXPECT_EQ(b.sources[0].kl_share, 0.0);
  EXPECT_EQ(b.sources[1].logit_error_share, 0.0);
  EXPECT_FALSE(b.kl_sum_over_combined.has_value());
  EXPECT_FALSE(b.logit_error_sum_over_combined.has_value());
}

}  // namespace
}  // namespace kvfid::ref
