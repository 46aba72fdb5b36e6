#pragma once
// Op map (attention; docs/ops.md): reference reference/mp/attention.h, softmax.h | shared cuda/common/attention_math.h, portable_math.h | kernel attn_prefill_kernel, attn_decode_kernel, attn_combine_kernel | twin TwinBackend::attend | tests MpKernels.*, tests/cuda/properties/
// Causal multi-head attention over every position at once. Query head h reads KV head
// config.kv_head_of(h); scores (attention_score.h: q.k_j / sqrt(head_dim), soft-capped
// where the model caps) for j <= t, softmax, then the probability-weighted sum of values.
#include "reference/model/config.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

class Shards;

// The cache a query reads (reference/formats/quant/kv_policy.h): query t reads key j
// from k_cold when j < cold_end(t, hot_window, k_group), else from k_hot, and value j
// from v_cold when j < cold_end(t, hot_window, 0), else from v_hot. Keys are
// [tokens, n_kv_heads, head_dim] and values [tokens, n_kv_heads, v_head_dim], of any precision.
struct AttentionKv {
  const MpArray& k_cold;
  const MpArray& k_hot;
  const MpArray& v_cold;
  const MpArray& v_hot;
  int hot_window = 0;
  int k_group = 0;
  // Radii of the keys and values (enclosure.h) for a single store (k_cold is k_hot, v_cold
  // is v_hot); null: exact values (a KV policy's stored forms are).
  const MpArray* k_radii = nullptr;
  const MpArray* v_radii = nullptr;
};

// Which keys query t reads: up to its own position (causal) or all of them; with a
// window W > 0 none before t - W + 1 (sliding-window attention), except, with sinks S,
// the first S keys (StreamingLLM's attention sinks: the softmax runs over the sinks and
// the window, sinks first). A KV policy with a hot window or KIVI groups is defined for
// causal reads only; sinks are not enclosed (no radii). Score-based evictions (and
// streaming with its account) are evicting_attention.h's, which reads the same keys as
// this mask for streaming:S,W, bit for bit.
struct AttentionMask {
  bool causal = true;
  int window = 0;
  int sinks = 0;
};

// The radii of a tracked attention (enclosure.h): out set means tracked; q null means
// exact queries; probs [n_heads, tokens, tokens] when the probabilities are kept.
struct AttentionRadii {
  const MpArray* q = nullptr;
  MpArray* probs = nullptr;
  MpArray* out = nullptr;
};

// q: [tokens, n_heads, head_dim].
// probs: [n_heads, tokens, tokens], exact zeros for masked keys; null when the tap is
// not kept: each thread then holds one row at a time (T numbers instead of n_heads T^2,
// which at long contexts is the forward's largest buffer);
// out: [tokens, n_heads * v_head_dim]. All results at the arithmetic's precision.
// With `shards`, the (head, position) items are also split across ranks (shards.h) and
// every rank ends with all of out and of probs (when kept: the probabilities feed no
// later operation, so without the tap the largest exchange of all is never made).
void causal_attention(MpArray* probs, MpArray& out, const MpArray& q, const AttentionKv& kv, int tokens,
                      const ModelConfig& config, const MpArith& arith, int threads, Shards* shards = nullptr,
                      const AttentionRadii& radii = {}, const AttentionMask& mask = {});
// One store: every key and value read from k and v ([tokens, n_kv_heads, head_dim]).
inline void causal_attention(MpArray& probs, MpArray& out, const MpArray& q, const MpArray& k, const MpArray& v,
                             int tokens, const ModelConfig& config, const MpArith& arith, int threads,
                             Shards* shards = nullptr) {
  causal_attention(&probs, out, q, AttentionKv{k, k, v, v}, tokens, config, arith, threads, shards);
}

}  // namespace kvfid::ref
