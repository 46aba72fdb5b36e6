#pragma once
// The report for machines: every row and finding, the options of the run, a summary
// of the golden's manifest, and the verdict.
#include <nlohmann/json.hpp>

#include "reference/metrics/fidelity_report.h"

namespace kvfid::ref {

// The manifest without its token list (replaced by "n_tokens"); everything else kept,
// since it says which model, precision and certification the golden stands for.
nlohmann::json golden_manifest_summary(const nlohmann::json& manifest);

// {"kvfid_version", "command", "options", "golden", "pass", "failures", "findings": [...],
//  "rows": [...]}. Numbers that are not finite (a reported-only row's bound) are null.
nlohmann::json report_to_json(const FidelityReport& report, const std::string& command,
                              const nlohmann::json& options, const nlohmann::json& golden_summary);

}  // namespace kvfid::ref
