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

struct QuantColumn {
  std::string label;                   // the KV configuration as given, e.g. "q8_0", "int4_32+edges=2:f16"
  LogitStatistics logits;              // weights and KV quantized together
  std::vector<KvLayerError> kv;        // [n_layers]; empty when the K/V taps were not compared
  std::optional<ErrorBudget> budget;   // when the weights-only and KV-only runs were made
  // The bits the cache held per cached K/V element (codes, block scales and norms, FP16
  // keys of an incomplete KIVI group): 8 x held bytes / (2 n_layers T kv_dim).
  std::optional<double> kv_bits_per_element;
};

struct QuantReport {
  std::string weights;                 // the weight format, e.g. "q4_0"
  std::vector<QuantColumn> columns;
};

}  // namespace kvfid::ref
