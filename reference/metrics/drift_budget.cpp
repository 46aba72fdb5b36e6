#include "reference/metrics/drift_budget.h"

namespace kvfid::ref {

namespace {

double share(double part, double total) { return total > 0 ? part / total : 0.0; }

std::optional<double> ratio(double sum, double combined) {
  if (combined == 0) return std::nullopt;
  return sum / combined;
}

}  // namespace

DriftErrorBudget attribute_error(const std::vector<DriftBudgetEntry>& singles, const DriftBudgetEntry& combined) {
  double kl_sum = 0, logit_sum = 0;
  for (const DriftBudgetEntry& e : singles) {
    kl_sum += e.kl;
    logit_sum += e.logit_error;
  }
  DriftErrorBudget b;
  for (const DriftBudgetEntry& e : singles) b.sources.push_back({e, share(e.kl, kl_sum), share(e.logit_error, logit_sum)});
  b.combined = combined;
  b.kl_sum_over_combined = ratio(kl_sum, combined.kl);
  b.logit_error_sum_over_combined = ratio(logit_sum, combined.logit_error);
  return b;
}

}  // namespace kvfid::ref
