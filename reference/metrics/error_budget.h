#pragma once
// Where a quantized model's logit error comes from: the same prompt run with only the
// weights quantized, only the KV cache, and both, each against the golden.
//
// The shares are of mean KLD. For small logit errors d, KL(p || q) = 1/2 Var_p(d) to
// second order (gate.h), and the error of both together is the sum of the two to first
// order; when the two are uncorrelated their variances add, so KL_both = KL_weights +
// KL_kv and each source's share of that sum is its part of the total. both_over_sum
// says how well that holds: above 1 the sources reinforce each other (correlated
// errors, or beyond second order), below 1 they partly cancel.
#include "reference/metrics/logit_statistics.h"

namespace kvfid::ref {

// The headline figures of one run.
struct BudgetEntry {
  Estimate kld;            // mean KLD
  double kld_max = 0;
  Estimate ln_ppl_ratio;
  Estimate same_top;
};

struct ErrorBudget {
  BudgetEntry weights;     // weights quantized, KV cache not
  BudgetEntry kv;          // KV cache quantized, weights not
  BudgetEntry both;
  double weights_share = 0;  // weights.kld / (weights.kld + kv.kld); NaN when that sum is 0
  double kv_share = 0;       // kv.kld / (weights.kld + kv.kld); NaN when that sum is 0
  double both_over_sum = 0;  // both.kld / (weights.kld + kv.kld); NaN when that sum is 0
};

BudgetEntry budget_entry(const LogitStatistics& run);

ErrorBudget error_budget(const LogitStatistics& weights_only, const LogitStatistics& kv_only,
                         const LogitStatistics& both);

}  // namespace kvfid::ref
