#pragma once
// `kvfid drift` as a library: the golden once over the sequence, every engine
// configuration, the attribution's emulations, the invariance verdicts and the error
// budgets. The writers (drift_output.h) turn the result into drift.csv/.json/.svg.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/metrics/drift_budget.h"
#include "reference/model/model.h"
#include "tools/kvfid/drift_engine_runs.h"
#include "tools/kvfid/drift_reference_runs.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the specification's names: the layer below

struct Request {
  Backend backend = Backend::twin;
  int threads = 0;                    // EngineOptions::threads
  LatentPath latent = LatentPath::reconstruct;  // EngineOptions::latent: a latent-attention model's decode path
  std::string weights = "f32";        // engine weight storage as given, for the reports;
  WeightFormat weight_format = {};    // parsed: the attribution's "weights" source
  std::vector<quant::KvPolicySpec> kv_specs;  // three engine curves and one attribution pair per spec
  bool progress = false;              // progress lines on stderr
  // The recompute's fresh prefill runs at every position (1) or every Nth and the last
  // (recomputed_at): its cost grows as T^2, a cached decode's as T.
  int recompute_every = 1;
};

// The attribution of one KV spec's error at the last position.
struct Budget {
  std::string kv_spec;
  int position = 0;
  DriftErrorBudget budget;   // sources: weights, kv, arithmetic; combined: all
  DriftBudgetEntry floor;    // F32 arithmetic alone, contained in the weights and kv sources
};

struct Result {
  Request request;
  std::vector<int> tokens;  // [T]
  int prompt_tokens = 0;    // tokens[0, prompt_tokens) came from the prompt, the rest from greedy decoding
  GoldenSeries golden;
  std::vector<Series> series;  // the engine configurations in order, the attribution runs, the eviction accounts
  std::vector<InvarianceVerdict> invariance;  // invariant-mode verdicts, then by-length ones
  std::vector<Budget> budgets;  // one per KV spec
  nlohmann::json timings;       // seconds: golden, each series, total

  // Every invariant-mode cached decode equals its recompute bit for bit (a by-length
  // cached decode that differs is the expected finding, not a failure).
  bool invariant() const;
  // Every eviction account's bound 2 m max|v| held at every step (a theorem: a
  // violation is a bug).
  bool eviction_bounds_held() const;
  // Positions of engine runs whose logits held NaN or Inf (gross failures).
  int engine_non_finite_positions() const;
};

// `tokens` from drift_sequence; `prompt_tokens` how many of them the prompt gave.
// Throws BackendUnavailable (CUDA without a GPU) and CertificationError.
Result run_drift(const Model& model, const std::vector<int>& tokens, int prompt_tokens, const Request& request);

// The budgets at `position` from the attribution series (names and roles as
// attribution_runs gives them, in the same order).
std::vector<Budget> error_budgets(const std::vector<AttributionRun>& runs, const std::vector<Series>& series,
                                  const std::vector<quant::KvPolicySpec>& kv_specs, int position);

}  // namespace kvfid::cli::drift
