#pragma once
// What the keys a cache holds do to attention, seen through the golden's own queries:
// the inner products q·k a query takes with them, and the attention distribution it
// forms from them.
//
// What it isolates: the error of the keys alone. The queries are the golden's exact
// ones and every product, scale and softmax here is computed in double or better, so
// neither the engine's query error, nor its score arithmetic, nor V enters. The key
// error is whatever the stored keys carry against the golden's exact keys: the storage
// format's rounding plus the error the engine's key already had before it was stored
// (see kv_round_trip.h); compare with the unquantized configuration for the storage's
// own part.
#include <span>
#include <vector>

#include "reference/metrics/attention_shape.h"

namespace kvfid::ref {

// The key a query at position t reads for key position j <= t: its cold (stored,
// decoded) form when j < cold_end[t], else its hot form (a hot window or a KIVI group
// still kept in FP16; quant::cold_end gives cold_end[t]).
struct KeysAsRead {
  std::span<const double> cold;         // [T, n_kv_heads, head_dim]
  std::span<const double> hot = {};     // [T, n_kv_heads, head_dim]; may be empty only when cold_end is
  std::span<const int> cold_end = {};   // [T], each in [0, t + 1]; empty: every key is read cold
};

struct KeyDistortion {
  // |q_t·k̂_j - q_t·k_j| / (|q_t| |k_j|) over t and the keys it reads, first_key(t) <= j
  // <= t (T (T + 1) / 2 pairs without a window): the error of a score relative to the
  // largest it could be for those norms (Cauchy-Schwarz).
  // A pair with |q_t| |k_j| = 0 counts 0 when its error is 0 and +Inf otherwise.
  double qk_mean = 0;
  double qk_max = 0;
  int qk_max_t = 0;  // where the max is (the first, in t then j order, on ties)
  int qk_max_j = 0;
  // KL(a_t || â_t) in nats, a_t = softmax_j(shape.score(q_t·k_j)) the golden's attention
  // over the keys it reads (the layer's scale, soft-cap and window: attention_shape.h),
  // â_t the same with the keys as read; mean over all T query positions (position 0,
  // with one key, always contributes 0).
  double attention_kl_mean = 0;
  double attention_kl_max = 0;
  int attention_kl_max_t = 0;
};

// golden_q: [T, n_heads, head_dim] after RoPE; golden_k: [T, n_kv_heads, head_dim]
// after RoPE; keys: as read by the engine (after RoPE, as caches store them). Returns
// [n_heads]. Throws std::invalid_argument when a size does not match the shape, a
// value is not finite, or a cold_end is out of range.
std::vector<KeyDistortion> key_distortion_per_query_head(std::span<const double> golden_q,
                                                         std::span<const double> golden_k, const KeysAsRead& keys,
                                                         const AttentionShape& shape);

}  // namespace kvfid::ref
