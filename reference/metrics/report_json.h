#pragma once
// The report for machines: every row and finding, the options of the run, a summary
// of the golden's manifest, and the verdict.
#include <nlohmann/json.hpp>

#include "reference/metrics/fidelity_report.h"

namespace kvfid::ref {

// What the manifest says of the golden (model, sha256, taps, precision, version, command,
// the scalar fields of config and certification) and "n_tokens" for its token list;
// nothing else of it, so the summary is bounded by what it names.
nlohmann::json golden_manifest_summary(const nlohmann::json& manifest);

// {"kvfid_version", "command", "options", "golden", "pass", "failures", "findings": [...],
//  "rows": [...]}. Numbers that are not finite (a reported-only row's bound) are null.
nlohmann::json report_to_json(const FidelityReport& report, const std::string& command,
                              const nlohmann::json& options, const nlohmann::json& golden_summary);

}  // namespace kvfid::ref
