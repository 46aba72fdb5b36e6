#include "reference/metrics/fidelity_report.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/metrics/gate.h"
#include "reference/metrics/kv_storage_floor.h"
#include "reference/metrics/logit_metrics.h"
#include "reference/metrics/tap_error.h"
#include "reference/metrics/tensor_index.h"

namespace kvfid::ref {

namespace {

constexpr double kNotGated = std::numeric_limits<double>::quiet_NaN();

ReportRow gated_row(const std::string& tap, const std::string& metric, double value, double baseline, double bound,
                    std::string where, std::string unit) {
  return {tap, metric, value, baseline, bound, true, within_bound(value, bound), std::move(where), std::move(unit)};
}

ReportRow reported_row(const std::string& tap, const std::string& metric, double value, double baseline,
                       std::string where, std::string unit) {
  return {tap, metric, value, baseline, kNotGated, false, true, std::move(where), std::move(unit)};
}

// Returns the tap's max |golden|, the scale of its floors.
double add_value_rows(const TapTensor& golden, const TapTensor& candidate, const TapTensor& baseline,
                      FloatFormat format, FloatFormat arithmetic, const std::optional<StorageFloor>& storage,
                      std::vector<ReportRow>& rows) {
  const TapError e = tap_error(golden, candidate, format);
  const TapError b = tap_error(golden, baseline, format);
  const std::string& tap = golden.name;
  const StorageFloor s = storage.value_or(StorageFloor{});
  rows.push_back(gated_row(
      tap, "max_abs", e.max_abs, b.max_abs,
      gate_bound(b.max_abs, std::max(max_abs_floor(e.max_abs_golden, arithmetic), s.max_abs), GateOrder::linear),
      format_index(golden.shape, e.max_abs_at), ""));
  rows.push_back(gated_row(tap, "sqrt_nmse", std::sqrt(e.nmse), std::sqrt(b.nmse),
                           gate_bound(std::sqrt(b.nmse), std::max(relative_rms_floor(arithmetic), s.sqrt_nmse),
                                      GateOrder::linear),
                           "", ""));
  rows.push_back(reported_row(tap, "max_ulps", e.max_ulps, b.max_ulps, format_index(golden.shape, e.max_ulps_at),
                              "ULP " + to_string(format)));
  return e.max_abs_golden;
}

// The KL floor comes from the logits' max-abs floor in the arithmetic's ULPs.
void add_logit_rows(const TapTensor& golden, const TapTensor& candidate, const TapTensor& baseline,
                    double max_abs_golden, FloatFormat arithmetic, std::vector<ReportRow>& rows) {
  const LogitMetrics e = logit_metrics(golden, candidate);
  const LogitMetrics b = logit_metrics(golden, baseline);
  const double floor = kl_floor(max_abs_floor(max_abs_golden, arithmetic));
  const std::string& tap = golden.name;
  rows.push_back(gated_row(tap, "kl_mean", e.kl_mean, b.kl_mean, gate_bound(b.kl_mean, floor, GateOrder::quadratic),
                           "", "nats"));
  rows.push_back(gated_row(tap, "kl_max", e.kl_max, b.kl_max, gate_bound(b.kl_max, floor, GateOrder::quadratic),
                           "[" + std::to_string(e.kl_max_position) + "]", "nats"));
  rows.push_back(reported_row(tap, "top1_agreement", e.top1_agreement, b.top1_agreement, "", "fraction"));
  rows.push_back(reported_row(tap, "max_dp", e.max_dp, b.max_dp, format_index(golden.shape, e.max_dp_at), ""));
}

}  // namespace

bool FidelityReport::pass() const { return failures() == 0; }

int FidelityReport::failures() const {
  int n = 0;
  for (const auto& f : findings) n += f.fails;
  for (const auto& r : rows) n += !r.pass;
  return n;
}

FidelityReport build_fidelity_report(const TapSet& golden, const TapSet& candidate, const TapSet& baseline,
                                     const ReportOptions& options) {
  FidelityReport report;
  for (const TapTensor& g : golden) {
    std::vector<GrossFinding> findings = gross_check_tap("candidate", g, find_tap(candidate, g.name));
    for (GrossFinding f : gross_check_tap("baseline", g, find_tap(baseline, g.name))) {
      f.fails = true;
      findings.push_back(std::move(f));
    }
    const bool measurable = findings.empty();
    report.findings.insert(report.findings.end(), findings.begin(), findings.end());
    if (!measurable) continue;
    const TapTensor& c = *find_tap(candidate, g.name);
    const TapTensor& b = *find_tap(baseline, g.name);
    const std::optional<StorageFloor> storage =
        options.kv_policy ? kv_storage_floor(g, *options.kv_policy) : std::nullopt;
    const double max_abs_golden = add_value_rows(g, c, b, ulp_format_of_tap(g.name, options.kv_format),
                                                  options.arithmetic, storage, report.rows);
    if (g.name == "logits") add_logit_rows(g, c, b, max_abs_golden, options.arithmetic, report.rows);
  }
  return report;
}

}  // namespace kvfid::ref
