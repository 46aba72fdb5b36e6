#pragma once
// What `kvfid quant` reports: one column per KV configuration (as given to --kv a,b,c),
// each the engine with the chosen weights and that KV configuration against the golden.
#include <optional>
#include <string>
#include <vector>

#include "reference/metrics/error_budget.h"
#include "reference/metrics/kv_layer_error.h"
#include "reference/metrics/logit_statistics.h"

namespace kvfid::ref {

// An eviction's exact account over the prompt (reference/mp/evicting_attention.h): the
// exact forward of the evicting cache, in the policy's storage, against the full one.
struct EvictionSummary {
  double kept_fraction = 1;           // keys read / keys the full cache reads, every query and head
  double mass_max = 0, mass_mean = 0;  // the full softmax's mass on the keys a query no longer read
  double error_max = 0, bound_max = 0;  // |o - o'| and its proven bound 2 m max|v|, the worst steps
  double ratio_max = 0;               // max |o - o'| / bound over the steps that dropped mass
  double margin_min = 0;              // the nearest any decision came to a tie (EvictionScorer::margin)
  bool bound_held = true;             // |o - o'| <= 2 m max|v| at every step
  double kld_mean = 0;                // mean KLD of the exact evicted forward against the golden
};

struct QuantColumn {
  std::string label;                   // the KV configuration as given, e.g. "q8_0", "int4_32+edges=2:f16"
  LogitStatistics logits;              // weights and KV quantized together
  std::vector<KvLayerError> kv;        // [n_layers]; empty when the K/V taps were not compared
  std::optional<ErrorBudget> budget;   // when the weights-only and KV-only runs were made
  // The bits the cache held per cached K/V element (codes, block scales and norms, FP16
  // keys of an incomplete KIVI group): 8 x held bytes / (2 n_layers T kv_dim).
  std::optional<double> kv_bits_per_element;
  // Under an eviction policy (and then no kv errors: evicted tokens are gone).
  std::optional<EvictionSummary> eviction;
};

struct QuantReport {
  std::string weights;                 // the weight format, e.g. "q4_0"
  std::vector<QuantColumn> columns;
};

}  // namespace kvfid::ref
