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
  // Named fields only, and of those only scalars (one level into "config" and
  // "certification"): the manifest is user input, and copying it whole would let a
  // hostile one make the report arbitrarily large.
  static constexpr const char* kFields[] = {"model",    "model_sha256",  "taps",   "precision_bits",
                                            "kvfid_version", "command"};
  static constexpr const char* kSections[] = {"config", "certification"};
  const auto is_scalar = [](const nlohmann::json& v) { return v.is_string() || v.is_number() || v.is_boolean(); };
  nlohmann::json summary = nlohmann::json::object();
  if (!manifest.is_object()) return summary;
  for (const char* field : kFields)
    if (const auto it = manifest.find(field); it != manifest.end() && is_scalar(*it)) summary[field] = *it;
  for (const char* section : kSections) {
    const auto it = manifest.find(section);
    if (it == manifest.end() || !it->is_object()) continue;
    nlohmann::json& out = summary[section] = nlohmann::json::object();
    for (const auto& [key, value] : it->items())
      if (is_scalar(value)) out[key] = value;
  }
  if (const auto tokens = manifest.find("tokens"); tokens != manifest.end() && tokens->is_array())
    summary["n_tokens"] = tokens->size();
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
