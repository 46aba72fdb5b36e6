#include "reference/metrics/report_json.h"

#include <cmath>

namespace kvfid::ref {

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json to_json(const ReportRow& row) {
  return {{"tap", row.tap},       {"metric", row.metric},     {"value", number(row.value)},
          {"baseline", number(row.baseline)}, {"bound", number(row.bound)}, {"gated", row.gated},
          {"pass", row.pass},     {"where", row.where},       {"unit", row.unit}};
}

nlohmann::json to_json(const GrossFinding& f) {
  return {{"subject", f.subject}, {"tap", f.tap}, {"kind", to_string(f.kind)}, {"detail", f.detail}, {"fails", f.fails}};
}

}  // namespace

nlohmann::json golden_manifest_summary(const nlohmann::json& manifest) {
  nlohmann::json summary = manifest.is_object() ? manifest : nlohmann::json::object();
  if (summary.contains("tokens")) {
    summary["n_tokens"] = summary["tokens"].size();
    summary.erase("tokens");
  }
  return summary;
}

nlohmann::json report_to_json(const FidelityReport& report, const std::string& command,
                              const nlohmann::json& options, const nlohmann::json& golden_summary) {
  nlohmann::json rows = nlohmann::json::array(), findings = nlohmann::json::array();
  for (const auto& r : report.rows) rows.push_back(to_json(r));
  for (const auto& f : report.findings) findings.push_back(to_json(f));
  return {{"kvfid_version", KVFID_VERSION}, {"command", command}, {"options", options},
          {"golden", golden_summary},       {"pass", report.pass()}, {"failures", report.failures()},
          {"findings", findings},           {"rows", rows}};
}

}  // namespace kvfid::ref
