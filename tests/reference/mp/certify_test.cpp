// The certification at its boundary: hand-built values whose verdict flips with one bit
// of error bound, so that a bound one bit too optimistic (or too strict) fails here.
//
// Geometry used throughout (MPFR's EXP: y = m * 2^EXP(y), 1/2 <= |m| < 1):
// rounds_correctly(y, err) asks whether every number within 2^(EXP(y) - err) of y rounds
// to nearest float64 as y does. Near 1 (EXP = 1) the float64 grid step is 2^-52 and its
// midpoints lie 2^-53 off the grid; just below 1 (EXP = 0) the step is 2^-53.
#include "reference/mp/certify.h"

#include <gtest/gtest.h>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kTestPrecision = 256;  // holds every hand-built value exactly

// a * 2^ea + b * 2^eb + c * 2^ec, exact at kTestPrecision.
void set_sum(mpfr_ptr y, long a, long ea, long b = 0, long eb = 0, long c = 0, long ec = 0) {
  MpArray t(1, kTestPrecision);
  mpfr_set_si_2exp(y, a, ea, MPFR_RNDN);
  mpfr_set_si_2exp(t[0], b, eb, MPFR_RNDN);
  mpfr_add(y, y, t[0], MPFR_RNDN);
  mpfr_set_si_2exp(t[0], c, ec, MPFR_RNDN);
  mpfr_add(y, y, t[0], MPFR_RNDN);
}

// y = s (1 + 2^-53 + 3 * 2^-71): 1.5 * 2^-70 above the midpoint between 1 and its float64
// successor, so it rounds up. The interval y -+ 2^(1 - err) stays above the midpoint iff
// 2^(1 - err) <= 1.5 * 2^-70, i.e. err >= 71.
void above_midpoint(mpfr_ptr y, int sign) { set_sum(y, sign, 0, sign, -53, 3 * sign, -71); }

TEST(Certify, JustAboveAMidpointFlipsBetween70And71Bits) {
  MpArray y(1, kTestPrecision);
  for (int sign : {1, -1}) {
    SCOPED_TRACE(sign);
    above_midpoint(y[0], sign);
    EXPECT_TRUE(rounds_correctly(y[0], 71));
    EXPECT_FALSE(rounds_correctly(y[0], 70));
  }
}

// Below the binade boundary 1 the grid is twice as fine: y = 1 - 2^-54 + 3 * 2^-72 has
// EXP 0 and lies 1.5 * 2^-71 above its midpoint; 2^(0 - err) <= 1.5 * 2^-71 iff err >= 71.
TEST(Certify, BelowABinadeBoundaryTheGridIsFiner) {
  MpArray y(1, kTestPrecision);
  set_sum(y[0], 1, 0, -1, -54, 3, -72);
  ASSERT_EQ(mpfr_get_exp(y[0]), 0);
  EXPECT_TRUE(rounds_correctly(y[0], 71));
  EXPECT_FALSE(rounds_correctly(y[0], 70));
}

// A value that is itself a float64: the directed test can never pass, the
// round-to-nearest one does while the interval stays within the midpoints on both sides
// (a tie at the midpoint rounds to y, whose last bit is even in all three cases).
//   1.5:  midpoints 2^-53 away on both sides: 2^(1 - err) <= 2^-53 iff err >= 54.
//   1.0:  binade boundary, the midpoint below is only 2^-54 away: err >= 55.
TEST(Certify, Float64ValuesNeedTheIntervalInsideTheirMidpoints) {
  MpArray y(1, kTestPrecision);
  for (int sign : {1, -1}) {
    SCOPED_TRACE(sign);
    mpfr_set_d(y[0], 1.5 * sign, MPFR_RNDN);
    EXPECT_TRUE(rounds_correctly(y[0], 54));
    EXPECT_FALSE(rounds_correctly(y[0], 53));
    mpfr_set_d(y[0], 1.0 * sign, MPFR_RNDN);
    EXPECT_TRUE(rounds_correctly(y[0], 55));
    EXPECT_FALSE(rounds_correctly(y[0], 54));
  }
}

// The round-to-nearest shortcut assumes a 53-bit grid, which subnormal float64s do not
// have: the smallest normal 2^-1022 (EXP -1021) passes, 2^-1023 (EXP -1022, subnormal)
// never does; at the top the largest finite float64 passes and 2^1024 (not a float64)
// never does.
TEST(Certify, Float64ValuesOnlyInTheNormalRange) {
  MpArray y(1, kTestPrecision);
  mpfr_set_si_2exp(y[0], 1, -1022, MPFR_RNDN);
  EXPECT_TRUE(rounds_correctly(y[0], 200));
  mpfr_set_si_2exp(y[0], 1, -1023, MPFR_RNDN);
  EXPECT_FALSE(rounds_correctly(y[0], 200));
  mpfr_set_d(y[0], 0x1.fffffffffffffp+1023, MPFR_RNDN);
  EXPECT_TRUE(rounds_correctly(y[0], 200));
  mpfr_set_si_2exp(y[0], 1, 1024, MPFR_RNDN);
  EXPECT_FALSE(rounds_correctly(y[0], 200));
}

// The bound from two runs: EXP(y) - EXP(|y_P - y|) - 1, the "- 1" allowing for the
// P + guard value's own error (at most as large as the difference). With y just above
// a midpoint (above_midpoint: certified iff err >= 71) and |y_P - y| = 7 * 2^-73
// (EXP -70, so err = 1 + 70 - 1 = 70), the truth may lie 2 * 7 * 2^-73 = 1.75 * 2^-70
// below y, across the midpoint: the value must not be certified, and is one bit of
// bound away from it.
TEST(Certify, ErrorBitsFromDifferentRunsFlipTheVerdictByOneBit) {
  MpArray high(1, kTestPrecision), low(1, kTestPrecision), difference(1, kDifferencePrecisionBits);
  for (int sign : {1, -1})
    for (int side : {1, -1}) {
      SCOPED_TRACE(testing::Message() << "sign " << sign << " side " << side);
      above_midpoint(high[0], sign);
      mpfr_set_si_2exp(low[0], 7 * side, -73, MPFR_RNDN);
      mpfr_add(low[0], low[0], high[0], MPFR_RNDN);
      const std::optional<long> err = certified_error_bits(low[0], high[0], 128, difference[0]);
      ASSERT_TRUE(err);
      EXPECT_EQ(*err, 70);
      EXPECT_FALSE(rounds_correctly(high[0], *err));
      EXPECT_TRUE(rounds_correctly(high[0], *err + 1));  // so the verdict hangs on this one bit
    }
}

// A power-of-two difference 2^-71 also has EXP -70: the bound counts binades, not bits.
// One just below a power of two, 2^-71 - 2^-200, is rounded away from zero to
// kDifferencePrecisionBits, reaching 2^-71 (EXP -70 instead of -71): the bound loses a
// bit rather than claim one it cannot justify.
TEST(Certify, ErrorBitsCountTheDifferencesBinadeRoundedUp) {
  MpArray high(1, kTestPrecision), low(1, kTestPrecision), difference(1, kDifferencePrecisionBits);
  mpfr_set_d(high[0], 1.5, MPFR_RNDN);
  set_sum(low[0], 3, -1, 1, -71);
  EXPECT_EQ(certified_error_bits(low[0], high[0], 128, difference[0]), 70);
  set_sum(low[0], 3, -1, 1, -72);
  EXPECT_EQ(certified_error_bits(low[0], high[0], 128, difference[0]), 71);
  set_sum(low[0], 3, -1, 1, -71, -1, -200);
  EXPECT_EQ(certified_error_bits(low[0], high[0], 128, difference[0]), 70);
  // EXP(y) enters too: y = 3 (EXP 2) with the same difference has one bit more.
  mpfr_set_d(high[0], 3.0, MPFR_RNDN);
  set_sum(low[0], 3, 0, 1, -72);
  EXPECT_EQ(certified_error_bits(low[0], high[0], 128, difference[0]), 72);
}

// Runs that agree bound the error by one ulp at P, 2^(EXP(y) - P): err = P - 2 with the
// same allowance for the P + guard value's error. At P = 73 that is 71 bits, which
// certifies above_midpoint's value, and at P = 72 70 bits, which does not.
TEST(Certify, EqualRunsBoundTheErrorByOneUlpAtP) {
  MpArray y(1, kTestPrecision), difference(1, kDifferencePrecisionBits);
  above_midpoint(y[0], 1);
  EXPECT_EQ(certified_error_bits(y[0], y[0], 73, difference[0]), 71);
  EXPECT_EQ(certified_error_bits(y[0], y[0], 72, difference[0]), 70);
  EXPECT_EQ(certified_error_bits(y[0], y[0], 128, difference[0]), 126);
}

TEST(Certify, NoBoundForZeroOrNonFiniteValues) {
  MpArray high(1, kTestPrecision), low(1, kTestPrecision), difference(1, kDifferencePrecisionBits);
  mpfr_set_zero(high[0], 1);
  mpfr_set_d(low[0], 0x1p-300, MPFR_RNDN);
  EXPECT_FALSE(certified_error_bits(low[0], high[0], 128, difference[0]));  // y zero, its companion not
  mpfr_set_zero(low[0], -1);
  EXPECT_FALSE(certified_error_bits(low[0], high[0], 128, difference[0]));  // certify_taps handles both-zero
  mpfr_set_inf(high[0], 1);
  mpfr_set_inf(low[0], 1);
  EXPECT_FALSE(certified_error_bits(low[0], high[0], 128, difference[0]));
  mpfr_set_nan(high[0]);
  EXPECT_FALSE(certified_error_bits(low[0], high[0], 128, difference[0]));
  // y nonzero but its companion an exact zero: the difference is y itself, err = -1.
  mpfr_set_d(high[0], 1.5, MPFR_RNDN);
  mpfr_set_zero(low[0], 1);
  EXPECT_EQ(certified_error_bits(low[0], high[0], 128, difference[0]), -1);
}

MpTap make_tap(const std::string& name, std::size_t n) { return MpTap{name, {std::int64_t(n)}, MpArray(n, kTestPrecision), {}}; }

// certify_taps: exact zeros in both runs pass, a zero in one run only does not; the
// first failure is reported with its tap, index and bound; the margin is the smallest
// err - kCertifiedBits over the nonzero values.
TEST(Certify, TapsReportTheFirstFailureAndTheWeakestMargin) {
  std::vector<MpTap> low, high;
  low.push_back(make_tap("a", 3));
  high.push_back(make_tap("a", 3));
  low.push_back(make_tap("b", 2));
  high.push_back(make_tap("b", 2));
  // a: [0, 1.5 (agree), above_midpoint with a difference of 2^-81 (EXP -80: err 80)]
  for (std::vector<MpTap>* run : {&low, &high}) mpfr_set_d((*run)[0].values[1], 1.5, MPFR_RNDN);
  above_midpoint(high[0].values[2], 1);
  mpfr_set_si_2exp(low[0].values[2], 1, -81, MPFR_RNDN);
  mpfr_add(low[0].values[2], low[0].values[2], high[0].values[2], MPFR_RNDN);
  // b: [-1.0 (agree), 0 in the P + guard run only]
  for (std::vector<MpTap>* run : {&low, &high}) mpfr_set_d((*run)[1].values[0], -1.0, MPFR_RNDN);
  mpfr_set_d(low[1].values[1], 0x1p-300, MPFR_RNDN);

  CertificationTally tally;
  const std::optional<UncertifiedValue> failure = certify_taps(low, high, 128, tally);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->tap, "b");
  EXPECT_EQ(failure->index, 1);
  EXPECT_FALSE(failure->error_bits) << "a zero against a nonzero bounds nothing";
  EXPECT_EQ(tally.values_certified, 4);
  EXPECT_EQ(tally.min_margin_bits, 80 - kCertifiedBits);

  mpfr_set_zero(low[1].values[1], 1);
  CertificationTally all;
  EXPECT_FALSE(certify_taps(low, high, 128, all));
  EXPECT_EQ(all.values_certified, 5);
  EXPECT_EQ(all.min_margin_bits, 80 - kCertifiedBits);

  // At P = 72 agreeing runs give 70 bits: a[1] made above_midpoint (needs 71) is now
  // the first failure.
  above_midpoint(low[0].values[1], 1);
  above_midpoint(high[0].values[1], 1);
  CertificationTally at_72;
  const std::optional<UncertifiedValue> weak = certify_taps(low, high, 72, at_72);
  ASSERT_TRUE(weak);
  EXPECT_EQ(weak->tap, "a");
  EXPECT_EQ(weak->index, 1);
  EXPECT_EQ(weak->error_bits, 70);
  EXPECT_EQ(at_72.values_certified, 1);
}

}  // namespace
}  // namespace kvfid::ref
