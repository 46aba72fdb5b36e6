#include "reference/metrics/sample_stats.h"

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// The statistics sum in long double and round once to double, then take at most a
// sqrt and a division (each within 1 ULP); 8 double ULPs covers that with room.
constexpr double kFewDoubleUlps = 8 * std::numeric_limits<double>::epsilon();

TEST(SampleStats, MeanAndStandardErrorOfAKnownSample) {
  // mean 3; sum of squared deviations 10, s^2 = 10/4, se = sqrt(2.5/5) = sqrt(1/2).
  const std::vector<double> x = {4, 1, 5, 2, 3};
  const Estimate e = mean_with_standard_error(x);
  EXPECT_EQ(e.value, 3.0);
  EXPECT_NEAR(e.standard_error, std::sqrt(0.5), kFewDoubleUlps);
}

TEST(SampleStats, AConstantSampleHasExactlyZeroStandardError) {
  const std::vector<double> x = {0.1, 0.1, 0.1, 0.1};
  const Estimate e = mean_with_standard_error(x);
  EXPECT_EQ(e.value, 0.1);
  EXPECT_EQ(e.standard_error, 0.0);
}

TEST(SampleStats, TooSmallSamplesHaveNoStandardError) {
  const Estimate one = mean_with_standard_error(std::vector<double>{2.5});
  EXPECT_EQ(one.value, 2.5);
  EXPECT_TRUE(std::isnan(one.standard_error));
  const Estimate none = mean_with_standard_error(std::vector<double>{});
  EXPECT_TRUE(std::isnan(none.value));
  EXPECT_TRUE(std::isnan(none.standard_error));
}

// llama.cpp's form of the same standard error, sqrt((sum x^2 / n - mean^2) / (n - 1)),
// recomputed naively in double: equal to the two-pass one up to the one-pass form's
// cancellation, about eps * mean^2 / variance relative (here mean 1, variance 1/4:
// 4 eps on the variance); 1e-12 leaves room for the n = 1000 summation's roundings.
TEST(SampleStats, StandardErrorAgreesWithTheOnePassFormula) {
  SCOPED_TRACE(test::seed_trace());
  constexpr double kOnePassTolerance = 1e-12;
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> value(1.0, 0.5);
  std::vector<double> x(1000);
  double sum = 0, sum2 = 0;
  for (double& v : x) {
    v = value(rng);
    sum += v;
    sum2 += v * v;
  }
  const double n = double(x.size()), mean = sum / n;
  const double one_pass = std::sqrt((sum2 / n - mean * mean) / (n - 1));
  const Estimate e = mean_with_standard_error(x);
  EXPECT_NEAR(e.value, mean, kOnePassTolerance * std::fabs(mean));
  EXPECT_NEAR(e.standard_error, one_pass, kOnePassTolerance * one_pass);
}

TEST(SampleStats, PercentilesInterpolateLinearlyBetweenOrderStatistics) {
  // Interpolated values in [2, 4), where a double ULP is 2^-51: the position's rounding
  // moves the weight by up to 1 ULP (times b - a = 1), the two products and the sum add
  // 1.5 ULPs; 4 ULPs with room.
  const double kInterpolationTolerance = 4 * std::ldexp(1.0, -51);
  const std::vector<double> even = {1, 2, 3, 4};
  EXPECT_EQ(percentile_of_sorted(even, 0.0), 1.0);
  EXPECT_EQ(percentile_of_sorted(even, 1.0), 4.0);
  EXPECT_EQ(percentile_of_sorted(even, 0.5), 2.5);          // position 1.5: the mean of the middle two
  EXPECT_NEAR(percentile_of_sorted(even, 0.9), 3.7, kInterpolationTolerance);  // position 2.7: 3 + 0.7 (4 - 3)
  EXPECT_NEAR(percentile_of_sorted(even, 1.0 / 3), 2.0, kInterpolationTolerance);  // position 1: the second value
  const std::vector<double> odd = {1, 3, 7};
  EXPECT_EQ(percentile_of_sorted(odd, 0.5), 3.0);           // the middle value
  EXPECT_EQ(percentile_of_sorted(odd, 0.25), 2.0);          // position 0.5
  EXPECT_EQ(percentile_of_sorted(std::vector<double>{5}, 0.999), 5.0);
}

TEST(SampleStats, EqualNeighboursGiveExactlyTheirValue) {
  const std::vector<double> x = {0.1, 0.1, 0.1};
  for (double f : {0.001, 0.3, 0.5, 0.77, 0.999}) EXPECT_EQ(percentile_of_sorted(x, f), 0.1) << f;
}

TEST(SampleStats, PercentileRejectsAnEmptySampleAndFractionsOutsideTheUnitInterval) {
  EXPECT_THROW(percentile_of_sorted(std::vector<double>{}, 0.5), std::invalid_argument);
  EXPECT_THROW(percentile_of_sorted(std::vector<double>{1, 2}, 1.5), std::invalid_argument);
  EXPECT_THROW(percentile_of_sorted(std::vector<double>{1, 2}, -0.1), std::invalid_argument);
  EXPECT_THROW(percentile_of_sorted(std::vector<double>{1, 2}, std::nan("")), std::invalid_argument);
}

TEST(SampleStats, PearsonCorrelationOfKnownPairs) {
  const std::vector<double> a = {1, 2, 3};
  // Deviations (-1, 0, 1) and (-1, 1, 0): sum of products 1, sums of squares 2 and 2.
  EXPECT_NEAR(pearson_correlation(a, std::vector<double>{1, 3, 2}), 0.5, kFewDoubleUlps);
  EXPECT_NEAR(pearson_correlation(a, std::vector<double>{10, 20, 30}), 1.0, kFewDoubleUlps);
  EXPECT_NEAR(pearson_correlation(a, std::vector<double>{3, 2, 1}), -1.0, kFewDoubleUlps);
  EXPECT_TRUE(std::isnan(pearson_correlation(a, std::vector<double>{4, 4, 4})));
  EXPECT_TRUE(std::isnan(pearson_correlation(std::vector<double>{1}, std::vector<double>{2})));
  EXPECT_THROW(pearson_correlation(a, std::vector<double>{1, 2}), std::invalid_argument);
}

}  // namespace
}  // namespace kvfid::ref
