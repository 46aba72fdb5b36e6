#pragma once
// The engine along a token sequence, in the ways `kvfid drift` compares:
//   cached decode  one sequence; token 0 prefilled, then one token per step, each
//                  position reading the K/V the cache holds from the earlier steps
//   recompute      for every t a fresh engine prefilling tokens[0..t] at once
//                  (O(T^2) rows in all; the twin is fast enough on small models)
// both in the engine's invariant split mode (split boundaries at fixed multiples, never
// derived from the step), where they give the same bits at every position: the drift
// between them must be exactly zero. The third run is cached decode in the by-length
// split mode (cuda/engine/split_keys.h: a one-row decode step cuts long contexts into
// small splits, a prefill does not), compared with the same recompute: its difference
// is the non-invariance such engines have, reported, not a failure.
#include <string>
#include <vector>

#include "cuda/engine/engine_options.h"
#include "reference/model/model.h"
#include "tools/kvfid/drift_series.h"

namespace kvfid::ref {
class Progress;
}  // namespace kvfid::ref

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine
}

namespace kvfid::cli::drift {

enum class Schedule { cached_decode, recompute };
std::string to_string(Schedule schedule);  // "cached-decode", "recompute"

struct EngineConfiguration {
  std::string name;            // unique, e.g. "f16 cached-decode", "f16 cached-decode by-length"
  std::string weights;         // weight format, as given
  std::string kv_spec;         // KV-cache spec, as given
  Schedule schedule = Schedule::cached_decode;
  EngineOptions options;       // from drift_engine_options, with the split mode
  int recompute_every = 1;     // recompute schedule: see recomputed_at
};

// Whether a recompute every `every` positions runs a fresh prefill at position t of T:
// at every t with t + 1 a multiple of `every`, and at the last. every = 1: at all.
bool recomputed_at(int t, int T, int every);

// Per KV spec, in order: cached decode, recompute (both in the invariant split mode),
// then cached decode in the by-length split mode. The recompute runs every
// `recompute_every` positions (recomputed_at). threads: EngineOptions::threads; latent:
// EngineOptions::latent. `weights` names `weight_format` in the reports.
std::vector<EngineConfiguration> engine_configurations(Backend backend, const std::string& weights,
                                                       const WeightFormat& weight_format,
                                                       const std::vector<quant::KvPolicySpec>& kv_specs,
                                                       int recompute_every = 1, int threads = 0,
                                                       LatentPath latent = LatentPath::reconstruct);

// Rows of work a configuration does over T positions (T for cached decode, the sum of
// t + 1 over the recomputed positions for recompute: T(T+1)/2 at every position), for
// progress.
std::int64_t engine_work(const EngineConfiguration& configuration, int positions);

struct EngineRun {
  Series series;
  std::vector<float> logits;  // [T, vocab] exactly as the engine returned them
};

// Runs one configuration over `tokens`, measuring every position against `golden`.
// Each position's attention summaries are recomputed in double from the engine's q
// row and the K rows its cache holds (attention_summary_from_qk): they show how the
// rounded queries and stored keys move the attention, apart from the engine's own
// softmax arithmetic. Throws BackendUnavailable for the CUDA engine without a GPU.
EngineRun run_engine_configuration(const Model& model, const EngineConfiguration& configuration,
                                   const std::vector<int>& tokens, const GoldenSeries& golden, Progress* progress);

struct InvarianceVerdict {
  std::string kv_spec;
  SplitMode split = SplitMode::invariant;  // the cached decode's split mode
  std::string cached;     // configuration names
  std::string recompute;
  bool bitwise_equal = true;
  int first_position = -1;  // the first position whose logits differ; -1 when equal
  int first_token = -1;     // the vocabulary index of the first differing logit there
  int compared_positions = 0;            // the positions the recompute ran at
  int differing_positions = 0;           // of those, the ones whose logits differ in any bit
  double max_abs_logit_difference = 0;   // max over them and the vocabulary of |cached - recompute|
};

// Compares the cached decode's logits [T, vocab] bit for bit with the recompute's at
// each position it ran (the verdict's split is left as the default for the caller to
// set).
InvarianceVerdict compare_logits_bitwise(const std::string& kv_spec, const EngineRun& cached, const EngineRun& recompute,
                                         int vocab);

// For each KV spec and each cached decode of it (invariant, then by-length), the
// comparison with the spec's recompute.
std::vector<InvarianceVerdict> invariance_verdicts(const std::vector<EngineConfiguration>& configurations,
                                                   const std::vector<EngineRun>& runs, int vocab);

// The sequence drift measures: the prompt's first `positions` tokens, or, when the
// prompt is shorter, the prompt extended by greedy decoding (argmax, first index on
// ties) on `backend` with F32 weights and an F32 cache. The continuation depends on
// neither --kv nor --weights (nor `threads`, EngineOptions::threads), so every
// configuration sees the same tokens.
std::vector<int> drift_sequence(const Model& model, const std::vector<int>& prompt, int positions, Backend backend,
                                int threads = 0);

}  // namespace kvfid::cli::drift
