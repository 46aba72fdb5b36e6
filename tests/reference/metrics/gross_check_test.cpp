#include "reference/metrics/gross_check.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "reference/metrics/fidelity_report.h"
#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(GrossCheck, AMeasurableTapHasNoFindings) {
  const TapTensor golden = make_tap("layers.0.q", {2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(gross_check_tap("candidate", golden, &golden).empty());
}

TEST(GrossCheck, CountsNanAndInfAndNamesTheFirst) {
  const TapTensor golden = make_tap("layers.0.q", {2, 3}, {1, 2, 3, 4, 5, 6});
  const TapTensor tap = make_tap("layers.0.q", {2, 3}, {1, 2, 3, kInf, kNaN, -kInf});
  const auto findings = gross_check_tap("candidate", golden, &tap);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, GrossKind::non_finite);
  EXPECT_TRUE(findings[0].fails);
  EXPECT_NE(findings[0].detail.find("1 NaN and 2 Inf among 6 values, first at [1, 0]"), std::string::npos)
      << findings[0].detail;
}

TEST(GrossCheck, AllZeroFailsOnlyWhenTheGoldenIsNotAllZero) {
  const TapTensor zeros = make_tap("layers.0.out", {3}, {0, 0, 0});
  const TapTensor golden = make_tap("layers.0.out", {3}, {0, 1e-3, 0});
  const auto findings = gross_check_tap("candidate", golden, &zeros);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, GrossKind::all_zero);
  EXPECT_TRUE(findings[0].fails);
  EXPECT_TRUE(gross_check_tap("candidate", zeros, &zeros).empty());
}

TEST(GrossCheck, ShapeMismatchFails) {
  const TapTensor golden = make_tap("layers.0.k", {2, 2}, {1, 2, 3, 4});
  const TapTensor transposed_shape = make_tap("layers.0.k", {4, 1}, {1, 2, 3, 4});
  const auto findings = gross_check_tap("candidate", golden, &transposed_shape);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, GrossKind::shape_mismatch);
  EXPECT_TRUE(findings[0].fails);
  EXPECT_NE(findings[0].detail.find("[4, 1]"), std::string::npos);
}

TEST(GrossCheck, MissingLogitsFailsButAMissingIntermediateTapIsOnlyReported) {
  const auto logits = gross_check_tap("candidate", make_tap("logits", {1, 2}, {1, 2}), nullptr);
  ASSERT_EQ(logits.size(), 1u);
  EXPECT_EQ(logits[0].kind, GrossKind::missing);
  EXPECT_TRUE(logits[0].fails);
  const auto q = gross_check_tap("candidate", make_tap("layers.0.q", {1}, {1}), nullptr);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].kind, GrossKind::missing);
  EXPECT_FALSE(q[0].fails);
}

// At the report level: gross findings decide before any metric, and a tap with one is
// not measured.
TEST(GrossCheck, ReportVerdictFollowsTheFindings) {
  const TapSet golden = {make_tap("logits", {1, 2}, {1, 2}), make_tap("layers.0.q", {2}, {3, 4})};
  const TapSet logits_only = {golden[0]};
  const FidelityReport missing_q = build_fidelity_report(golden, logits_only, golden, {});
  EXPECT_TRUE(missing_q.pass());
  ASSERT_EQ(missing_q.findings.size(), 1u);
  for (const auto& row : missing_q.rows) EXPECT_EQ(row.tap, "logits");

  const TapSet no_logits = {golden[1]};
  EXPECT_FALSE(build_fidelity_report(golden, no_logits, golden, {}).pass());

  const TapSet nan_q = {golden[0], make_tap("layers.0.q", {2}, {3, kNaN})};
  const FidelityReport r = build_fidelity_report(golden, nan_q, golden, {});
  EXPECT_FALSE(r.pass());
  EXPECT_EQ(r.failures(), 1);
  for (const auto& row : r.rows) EXPECT_NE(row.tap, "layers.0.q");
}

// Engines may dump taps no golden has (the engine's logprobs): the report walks the
// golden's taps, so such a tap is neither measured nor able to fail, even when broken.
TEST(GrossCheck, ACandidateTapTheGoldenLacksIsIgnored) {
  const TapSet golden = {make_tap("logits", {1, 2}, {1, 2})};
  const TapSet candidate = {golden[0], make_tap("logprobs", {1, 2}, {kNaN, kInf})};
  const FidelityReport r = build_fidelity_report(golden, candidate, golden, {});
  EXPECT_TRUE(r.pass());
  EXPECT_TRUE(r.findings.empty());
  ASSERT_FALSE(r.rows.empty());
  for (const auto& row : r.rows) EXPECT_EQ(row.tap, "logits");
}

TEST(GrossCheck, AnyBaselineFindingFailsBecauseItLeavesNoBound) {
  const TapSet golden = {make_tap("logits", {1, 2}, {1, 2}), make_tap("layers.0.q", {2}, {3, 4})};
  const TapSet baseline_without_q = {golden[0]};
  const FidelityReport r = build_fidelity_report(golden, golden, baseline_without_q, {});
  EXPECT_FALSE(r.pass());
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].subject, "baseline");
}

}  // namespace
}  // namespace kvfid::ref
