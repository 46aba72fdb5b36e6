#pragma once
// What `kvfid drift` measures along one token sequence, per run: at every position t
// (the distribution of token t+1 after tokens[0..t]) the next-token drift against the
// golden and, for runs with attention taps, each layer's attention summary.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/metrics/attention_stats.h"
#include "reference/metrics/drift_metrics.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the specification's names: the layer below

// An eviction's exact account at one position (evicting_attention.h), the worst over
// every layer and query head: the full cache's softmax mass on the keys the query no
// longer read, |o - o'| and its proven bound 2 m max|v|.
struct EvictionAtPosition {
  double mass = 0, observed = 0, bound = 0;
  int min_kept = 0;  // the fewest keys any head's query read (its own included)
};

struct PositionRecord {
  int position = 0;                         // t
  NextTokenDrift next_token;                // NaN metrics when the run's logits were not finite there
  std::vector<AttentionSummary> attention;  // [n_layers]; empty for logits-only runs
  std::optional<EvictionAtPosition> eviction;  // account runs only
};

struct Series {
  std::string name;        // unique: names the CSV rows, the JSON series and the plotted line
  std::string kind;        // "engine", "attribution" or "account" (an eviction's exact account)
  std::string schedule;    // "cached-decode", "recompute", "emulated" (one MPFR forward over the sequence)
                           // or "exact" (the account's exact forward)
  std::string split;       // the engine's split mode, "invariant" or "by-length"; empty for emulations
  std::string weights;     // weight storage format
  std::string kv;          // KV-cache spec
  std::string arithmetic;  // "f32" for the engine; the emulation's format otherwise
  std::vector<PositionRecord> positions;  // [T], in order; a strided recompute's only at the positions it recomputed
  int non_finite_positions = 0;           // positions whose logits held NaN or Inf
  double seconds = 0;
  bool bound_held = true;                 // account runs: 2 m max|v| held at every step
};

// The exact reference along the sequence, from one golden forward over all of it.
struct GoldenSeries {
  std::vector<double> logits;                            // [T, vocab]
  std::vector<std::vector<AttentionSummary>> attention;  // [T][n_layers], from the attn.probs taps
  nlohmann::json certification;
  double seconds = 0;
};

// The drift of one position's candidate logits [vocab] against the golden's row t;
// NaN metrics (and `non_finite` set) when the candidate holds NaN or Inf.
NextTokenDrift position_drift(const GoldenSeries& golden, int t, const double* candidate, int vocab, bool& non_finite);

}  // namespace kvfid::cli::drift
