#include "reference/metrics/error_budget.h"

#include <limits>

namespace kvfid::ref {

BudgetEntry budget_entry(const LogitStatistics& run) {
  return {run.kld, run.kld_max, run.ln_ppl_ratio, run.same_top};
}

ErrorBudget error_budget(const LogitStatistics& weights_only, const LogitStatistics& kv_only,
                         const LogitStatistics& both) {
  ErrorBudget b{budget_entry(weights_only), budget_entry(kv_only), budget_entry(both)};
  const double sum = b.weights.kld.value + b.kv.kld.value;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  b.weights_share = sum > 0 ? b.weights.kld.value / sum : nan;
  b.kv_share = sum > 0 ? b.kv.kld.value / sum : nan;
  b.both_over_sum = sum > 0 ? b.both.kld.value / sum : nan;
  return b;
}

}  // namespace kvfid::ref
