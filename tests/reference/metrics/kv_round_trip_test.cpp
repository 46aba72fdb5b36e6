#include "reference/metrics/kv_round_trip.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

// Sums in long double, one sqrt and one division rounded to double: a few ULPs.
constexpr double kRmsFewUlps = 8 * std::numeric_limits<double>::epsilon();

// T = 2, two KV heads of head_dim 2: [t][head][d].
constexpr AttentionShape kShape{2, 2, 2, 2};

TEST(KvRoundTrip, ErrorsOfOneHeadStayInThatHead) {
  const std::vector<double> golden = {1, 2, 3, 4,    // t = 0: head 0 (1, 2), head 1 (3, 4)
                                      -1, 0, 0, 2};  // t = 1: head 0 (-1, 0), head 1 (0, 2)
  std::vector<double> stored = golden;
  stored[2] += 0.5;   // head 1, t = 0
  stored[7] -= 1.0;   // head 1, t = 1
  const std::vector<RoundTripError> e = round_trip_error_per_head(golden, stored, kShape);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].rmse, 0.0);
  EXPECT_EQ(e[0].max_abs, 0.0);
  EXPECT_EQ(e[0].relative_rmse(), 0.0);
  EXPECT_NEAR(e[0].rms_golden, std::sqrt(6.0 / 4), kRmsFewUlps);         // (1 + 4 + 1 + 0) / 4
  EXPECT_NEAR(e[1].rmse, std::sqrt(1.25 / 4), kRmsFewUlps);               // (0.25 + 1) / 4
  EXPECT_EQ(e[1].max_abs, 1.0);
  EXPECT_NEAR(e[1].rms_golden, std::sqrt(29.0 / 4), kRmsFewUlps);         // (9 + 16 + 0 + 4) / 4
  EXPECT_NEAR(e[1].relative_rmse(), std::sqrt(1.25 / 29.0), 4 * kRmsFewUlps);
}

TEST(KvRoundTrip, RelativeErrorAgainstAnAllZeroGolden) {
  EXPECT_EQ((RoundTripError{0, 0, 0}).relative_rmse(), 0.0);
  EXPECT_EQ((RoundTripError{0.5, 0.5, 0}).relative_rmse(), std::numeric_limits<double>::infinity());
}

TEST(KvRoundTrip, RejectsSizesOtherThanTheShapeAndNonFiniteValues) {
  const std::vector<double> eight(8, 1.0);
  EXPECT_THROW(round_trip_error_per_head(eight, std::vector<double>(7, 1.0), kShape), std::invalid_argument);
  std::vector<double> with_nan = eight;
  with_nan[3] = std::nan("");
  EXPECT_THROW(round_trip_error_per_head(eight, with_nan, kShape), std::invalid_argument);
  EXPECT_THROW(round_trip_error_per_head(eight, eight, AttentionShape{2, 3, 2, 2}), std::invalid_argument);
}

}  // namespace
}  // namespace kvfid::ref
