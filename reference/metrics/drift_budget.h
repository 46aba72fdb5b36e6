#pragma once
// Error-budget attribution: the error each source causes on its own (weights rounded,
// KV cache rounded, arithmetic narrowed), as a share of what the sources cause
// together. Logit errors from independent sources add as vectors, so the KL (quadratic
// in the error for small errors) and the max |logit error| (sub-additive) of the
// combination need not equal the sum of the parts: the ratios say how far they do.
#include <optional>
#include <string>
#include <vector>

namespace kvfid::ref {

struct DriftBudgetEntry {
  std::string source;       // e.g. "weights f16"
  double kl = 0;            // KL(golden || run) at the measured position, nats
  double logit_error = 0;   // max |logit error| at the measured position
};

struct DriftBudgetShare {
  DriftBudgetEntry entry;
  double kl_share = 0;           // kl / (sum of the single sources' kl); 0 when that sum is 0
  double logit_error_share = 0;  // likewise for logit_error
};

struct DriftErrorBudget {
  std::vector<DriftBudgetShare> sources;  // the single sources, in the order given
  DriftBudgetEntry combined;              // every source at once
  // (sum over single sources) / combined: 1 when the parts add up to the whole, below 1
  // when the combination is worse than its parts, above when errors cancel; nullopt
  // when the combined value is 0.
  std::optional<double> kl_sum_over_combined;
  std::optional<double> logit_error_sum_over_combined;
};

DriftErrorBudget attribute_error(const std::vector<DriftBudgetEntry>& singles, const DriftBudgetEntry& combined);

}  // namespace kvfid::ref
