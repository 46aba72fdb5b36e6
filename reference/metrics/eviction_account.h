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
// This is the error of one attention op on the full cache's inputs; later layers see it
// propagate. The account of any policy (eviction_policy.h) on the evicted forward's own
// inputs, layer after layer, is evicting_attention.h's (MpForwardOptions::evict_record),
// by the same formulas (RowAccount); kvfid evict reports that one.
#include <string>
#include <vector>

#include "reference/model/config.h"
#include "reference/mp/evicting_attention.h"
#include "reference/mp/mp_forward.h"

namespace kvfid::ref {

struct StreamingEviction {
  int sinks = 0;
  int window = 0;
  bool keeps(int key, int position) const { return key < sinks || key > position - window; }
};

// Every (layer, head, position) of `taps` (an exact forward with attn.probs and v kept
// for every layer), in that order. The sums run at 2P + 64 bits from the taps' P-bit
// values; `certified` is set false (and the step kept) if any observed error exceeds
// (m + |1 - sum_kept p|) V, the bound for the taps' own rounded probabilities (equal
// to 2 m V when they sum to 1), relaxed by 2^-(2P) for the evaluation's roundings.
std::vector<EvictionStep> eviction_account(const std::vector<MpTap>& taps, const ModelConfig& config, int tokens,
                                           const StreamingEviction& policy, bool* certified = nullptr);

}  // namespace kvfid::ref
