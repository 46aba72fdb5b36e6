#pragma once
// The reference side of `kvfid drift`: the certified golden along the whole sequence,
// and the MPFR emulations that split the error budget by source.
//
// One golden forward covers every position: the reference processes all T tokens at
// once under the causal mask, so position t's values are those of a decode over
// tokens[0..t] (exact arithmetic does not depend on the order), and each position's
// attention is computed once, over the keys the others share -- the exact counterpart
// of reusing a KV cache, with no per-position recomputation.
#include <string>
#include <vector>

#include "reference/model/model.h"
#include "reference/native/emulated_forward.h"
#include "tools/kvfid/drift_series.h"

namespace kvfid::ref {
class Progress;
}  // namespace kvfid::ref

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below
}

namespace kvfid::cli::drift {

// compute_golden with every tap; the attn.probs taps [n_heads, T, T] are reduced to
// per-position summaries and dropped. Throws CertificationError when the golden
// cannot be certified.
GoldenSeries golden_series(const Model& model, const std::vector<int>& tokens, Progress* progress);

// The arithmetic the attribution's "arithmetic" source narrows to: FP16 everywhere.
inline constexpr FloatFormat kAttributionArithmetic = FloatFormat::f16;

// One emulated run of the attribution. Roles:
//   floor       F32 arithmetic, exact storage: what the weights and kv runs carry besides their source
//   weights     F32 arithmetic, weights in --weights, exact KV
//   arithmetic  FP16 arithmetic, exact storage
//   kv          F32 arithmetic, exact weights, KV cache in one spec
//   all         FP16 arithmetic, weights in --weights, KV cache in one spec
struct AttributionRun {
  std::string name;     // unique, e.g. "budget: kv f16"
  std::string role;     // as above
  std::string kv_spec;  // the spec a kv or all run belongs to; empty for the shared roles
  std::string weights;  // formats as given, for the reports
  std::string kv;
  std::string arithmetic;
  Emulation emulation;
};

// floor, weights and arithmetic once, then kv and all per KV spec.
// `weights` names `weight_format` in the reports.
std::vector<AttributionRun> attribution_runs(const std::string& weights, const WeightFormat& weight_format,
                                             const std::vector<quant::KvPolicySpec>& kv_specs);

// The exact account of the eviction in `kv` (which has one): exact_evicting_logits, with the policy's storage and eviction (evicting_attention.h),
// its next-token drift against the full cache's golden at every position, and each
// position's dropped mass, error and bound.
Series eviction_account_series(const Model& model, const std::vector<int>& tokens, const quant::KvPolicySpec& kv,
                               const GoldenSeries& golden);

// emulated_forward over the whole sequence (logits only), measured against `golden`.
Series attribution_series(const Model& model, const std::vector<int>& tokens, const AttributionRun& run,
                          const GoldenSeries& golden);

}  // namespace kvfid::cli::drift
