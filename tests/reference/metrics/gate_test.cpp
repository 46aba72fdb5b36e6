#include "reference/metrics/gate.h"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "reference/metrics/fidelity_report.h"
#include "tests/common/test_env.h"
#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

const ReportRow& row_of(const FidelityReport& r, const std::string& tap, const std::string& metric) {
  for (const auto& row : r.rows)
    if (row.tap == tap && row.metric == metric) return row;
  throw std::runtime_error("no row " + tap + " " + metric);
}

TEST(Gate, BoundIsKTimesTheBaselineOrKSquaredForQuadraticMetrics) {
  EXPECT_EQ(gate_bound(1e-3, 1e-9, GateOrder::linear), kGateFactor * 1e-3);
  EXPECT_EQ(gate_bound(1e-3, 1e-9, GateOrder::quadratic), kGateFactor * kGateFactor * 1e-3);
}

TEST(Gate, FloorHoldsWhenTheBaselineIsExactOrTiny) {
  EXPECT_EQ(gate_bound(0.0, 1e-9, GateOrder::linear), 1e-9);
  EXPECT_EQ(gate_bound(1e-12, 1e-9, GateOrder::quadratic), 1e-9);
}

TEST(Gate, NoFiniteBaselineMeansNoBoundAndEverythingFails) {
  EXPECT_TRUE(std::isnan(gate_bound(std::numeric_limits<double>::infinity(), 1e-9, GateOrder::linear)));
  EXPECT_FALSE(within_bound(0.0, gate_bound(std::nan(""), 1e-9, GateOrder::linear)));
  EXPECT_FALSE(within_bound(std::nan(""), 1.0));
  EXPECT_TRUE(within_bound(1.0, 1.0));
  EXPECT_FALSE(within_bound(std::nextafter(1.0, 2.0), 1.0));
}

TEST(Gate, FloorsComeFromTheFormatsUlps) {
  EXPECT_EQ(max_abs_floor(1.5, FloatFormat::f32), kFloorUlps * std::ldexp(1.0, -23));
  EXPECT_EQ(max_abs_floor(1.5, FloatFormat::f16), kFloorUlps * std::ldexp(1.0, -10));
  EXPECT_EQ(max_abs_floor(1024, FloatFormat::bf16), kFloorUlps * std::ldexp(1.0, 3));
  EXPECT_EQ(relative_rms_floor(FloatFormat::f32), kFloorUlps * std::ldexp(1.0, -23));
  EXPECT_EQ(kl_floor(2e-6), 0.5 * 2e-6 * 2e-6);
}

// One tap, errors e times a fixed pattern for the baseline and r*e for the candidate.
FidelityReport report_with_ratio(double ratio) {
  const TapTensor golden = make_tap("layers.0.out", {4}, {1.0, -2.0, 0.5, 3.0});
  const std::vector<double> pattern = {1, -1, 0.5, -0.25};
  const TapSet g = {golden};
  const TapSet baseline = {test::perturbed(golden, pattern, 1e-4)};
  const TapSet candidate = {test::perturbed(golden, pattern, ratio * 1e-4)};
  return build_fidelity_report(g, candidate, baseline, {});
}

TEST(Gate, MaxAbsAndRmsPassBelowKTimesTheBaselineAndFailAbove) {
  const FidelityReport under = report_with_ratio(1.9);
  EXPECT_TRUE(row_of(under, "layers.0.out", "max_abs").pass);
  EXPECT_TRUE(row_of(under, "layers.0.out", "sqrt_nmse").pass);
  EXPECT_TRUE(under.pass());
  const FidelityReport over = report_with_ratio(2.1);
  EXPECT_FALSE(row_of(over, "layers.0.out", "max_abs").pass);
  EXPECT_FALSE(row_of(over, "layers.0.out", "sqrt_nmse").pass);
  EXPECT_FALSE(over.pass());
  EXPECT_EQ(over.failures(), 2);
  // max_ulps is reported, never gated.
  const ReportRow& ulps = row_of(over, "layers.0.out", "max_ulps");
  EXPECT_FALSE(ulps.gated);
  EXPECT_TRUE(ulps.pass);
}

TEST(Gate, AnExactBaselineLeavesTheRoundingFloor) {
  const TapTensor golden = make_tap("layers.0.attn.probs", {1, 2, 2}, {1.0, 0.0, 0.25, 0.75});
  const TapSet g = {golden};
  const double ulp = ulp_of(1.0, FloatFormat::f32);  // at max |golden|
  const TapSet one_ulp = {test::perturbed(golden, {-1, 0, 0, 0}, ulp)};
  const TapSet eight_ulps = {test::perturbed(golden, {-1, 0, 0, 0}, 8 * ulp)};
  const FidelityReport pass = build_fidelity_report(g, one_ulp, g, {});
  EXPECT_EQ(row_of(pass, golden.name, "max_abs").baseline, 0.0);
  EXPECT_EQ(row_of(pass, golden.name, "max_abs").bound, kFloorUlps * ulp);
  EXPECT_TRUE(pass.pass());
  EXPECT_FALSE(row_of(build_fidelity_report(g, eight_ulps, g, {}), golden.name, "max_abs").pass);
}

// Logit errors 1.9x the baseline's give KL about 1.9^2 = 3.6x the baseline's: over k but
// within k^2, so a linear k would wrongly fail an engine within the rule; 2.1x gives 4.4x.
TEST(Gate, KlIsBoundedByKSquaredTimesTheBaseline) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> logit(0.0, 2.0);
  constexpr int positions = 3, vocab = 16;
  std::vector<double> g(positions * vocab), pattern(positions * vocab);  // [positions, vocab] each
  for (auto& v : g) v = logit(rng);
  for (auto& v : pattern) v = logit(rng);
  const TapTensor golden = make_tap("logits", {positions, vocab}, g);
  const TapSet gs = {golden};
  const TapSet baseline = {test::perturbed(golden, pattern, 1e-3)};
  for (double ratio : {1.9, 2.1}) {
    const FidelityReport r = build_fidelity_report(gs, {test::perturbed(golden, pattern, ratio * 1e-3)}, baseline, {});
    for (const char* metric : {"kl_mean", "kl_max"}) {
      const ReportRow& row = row_of(r, "logits", metric);
      EXPECT_GT(row.value, kGateFactor * row.baseline) << metric << " at ratio " << ratio;
      EXPECT_EQ(row.bound, kGateFactor * kGateFactor * row.baseline);
      EXPECT_EQ(row.pass, ratio < kGateFactor) << metric << " at ratio " << ratio;
    }
    EXPECT_FALSE(row_of(r, "logits", "top1_agreement").gated);
    EXPECT_FALSE(row_of(r, "logits", "max_dp").gated);
  }
}

}  // namespace
}  // namespace kvfid::ref
