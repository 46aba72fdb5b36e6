#pragma once
// The quantization report for machines: every statistic of every configuration, its
// per-position values, the per-layer/head KV errors and the error budget. Numbers
// that are not finite (a standard error from one position) are null.
#include <string>

#include <nlohmann/json.hpp>

#include "reference/metrics/quant_report.h"

namespace kvfid::ref {

// {"positions", "ppl_test": {"value", "standard_error"}, ..., "kld_percentiles":
//  [{"level", "value"}], ..., "per_position": {"kld", "dp", "nll_test", "nll_base",
//  "same_top"}}; Δp as a probability, not a percentage.
nlohmann::json logit_statistics_to_json(const LogitStatistics& s);

// {"kvfid_version", "command", "options", "golden", "weights", "columns": [{"label",
//  "logits", "kv": null | {"summary", "layers": [{"layer", "k": [...], "v": [...],
//  "query_heads": [...]}]}, "budget": null | {...}}]}
nlohmann::json quant_report_to_json(const QuantReport& report, const std::string& command,
                                    const nlohmann::json& options, const nlohmann::json& golden_summary);

}  // namespace kvfid::ref
