#pragma once
// The exact account of a StreamingLLM eviction (Xiao et al., "Efficient Streaming
// Language Models with Attention Sinks", 2023): a query at position t keeps the first
// `sinks` keys and the last `window` (t - window + 1 .. t) and drops the rest. Per layer,
// query head and position, from an exact forward of the full cache (mp_forward's taps):
//   m      = sum of the full softmax's probabilities of the dropped keys;
//   o      = sum_j p_j v_j (the full cache's output), o' = sum_kept p_j v_j / (1 - m)
//            (the softmax over the kept keys is the full one renormalized);
//   bound  = 2 m max_j |v_j|_2, since o - o' = sum_dropped p_j v_j
//            - (m / (1 - m)) sum_kept p_j v_j, whose norm is at most m V + m V;
//            attained by two keys with opposite values;
//   observed = |o - o'|_2.
// This is the error of one attention op on the same inputs; later layers see it
// propagate (the end-to-end effect needs the evicted forward, not computed here).
#include <string>
#include <vector>

#include "reference/model/config.h"
#include "reference/mp/mp_forward.h"

namespace kvfid::ref {

struct StreamingEviction {
  int sinks = 0;
  int window = 0;
  bool keeps(int key, int position) const { return key < sinks || key > position - window; }
};

// "streaming:SINKS,WINDOW" (sinks >= 0, window >= 1); InputError naming `source` otherwise,
// and for the other policies of the literature, named.
StreamingEviction parse_streaming_eviction(const std::string& spec, const std::string& source);

struct EvictionStep {
  int layer = 0, head = 0, position = 0;
  double mass = 0;      // dropped probability mass, rounded to nearest
  double observed = 0;  // |o - o'|_2
  double bound = 0;     // 2 m max_j |v_j|_2
};

// Every (layer, head, position) of `taps` (an exact forward with attn.probs and v kept
// for every layer), in that order. The sums run at 2P + 64 bits from the taps' P-bit
// values; `certified` is set false (and the step kept) if any observed error exceeds
// (m + |1 - sum_kept p|) V, the bound for the taps' own rounded probabilities (equal
// to 2 m V when they sum to 1), relaxed by 2^-(2P) for the evaluation's roundings.
std::vector<EvictionStep> eviction_account(const std::vector<MpTap>& taps, const ModelConfig& config, int tokens,
                                           const StreamingEviction& policy, bool* certified = nullptr);

}  // namespace kvfid::ref
