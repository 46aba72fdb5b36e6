#include "reference/metrics/tap_error.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

TEST(TapError, MaxAbsAndNmseOfAHandComputedCase) {
  const TapTensor golden = make_tap("layers.0.out", {3}, {1, 2, 2});     // sum g^2 = 9
  const TapTensor candidate = make_tap("layers.0.out", {3}, {1, 2.5, 1});  // errors 0, 0.5, -1
  const TapError e = tap_error(golden, candidate, FloatFormat::f32);
  EXPECT_EQ(e.max_abs, 1.0);
  EXPECT_EQ(e.max_abs_at, 2);
  EXPECT_DOUBLE_EQ(e.nmse, 1.25 / 9.0);
  EXPECT_EQ(e.max_abs_golden, 2.0);
}

TEST(TapError, IdenticalTapsHaveNoError) {
  const TapTensor golden = make_tap("logits", {2, 2}, {-3, 0.25, 7, 1e-30});
  const TapError e = tap_error(golden, golden, FloatFormat::f32);
  EXPECT_EQ(e.max_abs, 0.0);
  EXPECT_EQ(e.max_ulps, 0.0);
  EXPECT_EQ(e.nmse, 0.0);
}

// ULPs are counted at the golden value: one step across the binade boundary at 1.0
// is half an FP32 ULP of 1.0 but a whole ULP of the float just below it.
TEST(TapError, UlpsAreCountedAtTheGoldenValueAcrossABinadeBoundary) {
  const double below_one = double(std::nextafter(1.0f, 0.0f));  // 1 - 2^-24
  const TapError down = tap_error(make_tap("x", {1}, {1.0}), make_tap("x", {1}, {below_one}), FloatFormat::f32);
  EXPECT_EQ(down.max_ulps, 0.5);
  const TapError up = tap_error(make_tap("x", {1}, {below_one}), make_tap("x", {1}, {1.0}), FloatFormat::f32);
  EXPECT_EQ(up.max_ulps, 1.0);
  // The same in FP16 at 2.0: the largest FP16 below 2 is 2 - 2^-10; ULP(2) = 2^-9.
  const TapError f16 = tap_error(make_tap("x", {1}, {2.0}), make_tap("x", {1}, {2.0 - std::ldexp(1.0, -10)}),
                                 FloatFormat::f16);
  EXPECT_EQ(f16.max_ulps, 0.5);
}

TEST(TapError, MaxUlpsReportsWhereTheRelativeErrorIsLargest) {
  // Absolute errors 1e-3 at 1000 and 1e-6 at 1e-3: the second is more ULPs.
  const TapTensor golden = make_tap("x", {2}, {1000, 1e-3});
  const TapTensor candidate = make_tap("x", {2}, {1000 + 1e-3, 1e-3 + 1e-6});
  const TapError e = tap_error(golden, candidate, FloatFormat::f32);
  EXPECT_EQ(e.max_abs_at, 0);
  EXPECT_EQ(e.max_ulps_at, 1);
  EXPECT_DOUBLE_EQ(e.max_ulps, std::fabs(candidate.values[1] - 1e-3) / ulp_of(1e-3, FloatFormat::f32));
}

TEST(TapError, NmseOfAnAllZeroGolden) {
  const TapTensor zero = make_tap("x", {2}, {0, 0});
  EXPECT_EQ(tap_error(zero, zero, FloatFormat::f32).nmse, 0.0);
  EXPECT_EQ(tap_error(zero, make_tap("x", {2}, {0, 1e-9}), FloatFormat::f32).nmse,
            std::numeric_limits<double>::infinity());
}

TEST(TapError, DifferentValueCountsAreACallersBug) {
  EXPECT_THROW(tap_error(make_tap("x", {2}, {1, 2}), make_tap("x", {1}, {1}), FloatFormat::f32), std::invalid_argument);
}

TEST(TapError, KAndVTapsCountUlpsInTheKvFormat) {
  EXPECT_EQ(ulp_format_of_tap("layers.3.k", FloatFormat::f16), FloatFormat::f16);
  EXPECT_EQ(ulp_format_of_tap("layers.0.v", FloatFormat::bf16), FloatFormat::bf16);
  EXPECT_EQ(ulp_format_of_tap("layers.0.q", FloatFormat::f16), FloatFormat::f32);
  EXPECT_EQ(ulp_format_of_tap("layers.0.attn.out", FloatFormat::f16), FloatFormat::f32);
  EXPECT_EQ(ulp_format_of_tap("logits", FloatFormat::f16), FloatFormat::f32);
}

}  // namespace
}  // namespace kvfid::ref
