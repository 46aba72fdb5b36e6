#pragma once
// The three files `kvfid drift` writes, and its report on stdout.
//
// drift.csv: a header line, then one row per configuration and position it measured
// (every position, except a recompute run with --recompute-every N), columns
//   configuration        the series name (engine configurations, then "budget: ..." runs,
//                        then "account: exact ..." runs, one per KV spec with an eviction)
//   kind                 engine | attribution | account
//   schedule             cached-decode | recompute | emulated (one MPFR forward over the
//                        sequence) | exact (the account's exact forward of the evicting cache)
//   split                the engine's attention split mode: invariant | by-length;
//                        empty for emulations
//   weights, kv, arithmetic  the run's formats
//   position             t, 0-based: the distribution of token t+1 after tokens[0..t]
//   token                tokens[t]
//   kl                   KL(golden || run) of the next-token distribution, nats
//   max_abs_logit_error  max over the vocabulary of |run - golden|
//   golden_top1, top1    the argmaxes (first index on ties); top1_agrees 1 or 0
//   uniform_weight       1/(t+1): each key's weight under uniform attention
//   then per layer L:
//   entropy_L            the run's attention entropy (nats, mean over heads), recomputed
//                        in double from its query and cached keys
//   golden_entropy_L     the golden's, from its attn.probs tap
//   newest_weight_L      the run's weight on the newest key (mean over heads)
//   golden_newest_weight_L
//   then, filled for account runs only (evicting_attention.h; the worst layer and head):
//   evicted_mass         the full cache's softmax mass on the keys query t no longer read
//   evict_error          |o - o'|, the attention output's error that causes
//   evict_bound          its proven bound 2 m max|v|
//   min_kept             the fewest keys a query read at t (its own included)
// Attention columns are empty for attribution and account runs (logits only). Metrics of a
// position whose logits were not finite read "nan". Numbers carry 17 significant digits.
//
// drift.json: the same series as arrays, the golden's attention, the invariance
// verdicts (per KV spec and split mode: bitwise equal or not, the first difference,
// how many positions differ and the largest |logit difference|), the error budgets and
// a summary (KL at the last position and the maximum per configuration, both modes'
// verdict lines, timings), and per account run the arrays evicted_mass, evict_error,
// evict_bound, min_kept and bound_held.
//
// drift.svg: KL per position on a log scale, one line per configuration: solid cached
// decode, dashed recompute, dash-dotted by-length cached decode, dotted budget runs,
// long-dashed eviction accounts (the exact evicting forward against the full cache).
// eviction.svg, with an evicting KV spec only: per account run and position the dropped
// mass (solid), |o - o'| (dashed) and its bound (dotted), log scale.
#include <string>

#include <nlohmann/json.hpp>

#include "reference/util/svg_plot.h"
#include "tools/kvfid/drift_run.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the specification's names: the layer below

// What the reports say about the model and engine besides the result.
struct ReportContext {
  std::string model_path;
  std::string model_name;  // for the title, e.g. "stories260K.bin"
  std::string model_sha256;
  nlohmann::json model_config;
  std::string engine;      // "twin" or "cuda"
};

std::string drift_csv(const Result& result, int n_layers);
nlohmann::json drift_json(const Result& result, const ReportContext& context);
LinePlot drift_plot(const Result& result, const ReportContext& context);
// eviction.svg's plot; empty series when no KV spec evicts.
LinePlot eviction_plot(const Result& result, const ReportContext& context);
// One line: the verdict on invariant-mode cached decode against recompute.
std::string invariance_line(const Result& result);
// One line: how by-length cached decode differs from recompute (expected, not a failure).
std::string by_length_line(const Result& result);
// The stdout report: per configuration the KL at the last position, the maximum, the
// top-1 agreement and the time; the invariance and by-length lines; the error budgets;
// per eviction account its worst mass, error and bound and whether the bound held.
std::string drift_summary_text(const Result& result);

}  // namespace kvfid::cli::drift
