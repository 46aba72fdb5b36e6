#pragma once
// The dimensions of one layer's attention taps, which the KV metrics take as plain
// arrays: q [T, n_heads, head_dim], k [T, n_kv_heads, head_dim], v [T, n_kv_heads, v_head_dim].
#include <cstddef>
#include <span>

#include "reference/model/config.h"

namespace kvfid::ref {

struct AttentionShape {
  int tokens = 0;      // T
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // divides n_heads: query head h reads KV head h / (n_heads / n_kv_heads)
  int head_dim = 0;
  // The layer's score rule (attention_score.h's): q.k / sqrt(score_scale_dim) (0:
  // head_dim), then soft-capped when softcap > 0 (Gemma 2); a query at t reads keys
  // first_key(t) .. t (window > 0: a sliding window).
  double score_scale_dim = 0;
  double softcap = 0;
  int window = 0;
  int v_head_dim = 0;  // 0: head_dim (latent attention's values are narrower)

  int kv_head_of(int query_head) const { return query_head / (n_heads / n_kv_heads); }
  // The score of a dot product, in long double (the metrics' own precision).
  long double score(long double dot) const;
  int first_key(int t) const { return window > 0 && t - window + 1 > 0 ? t - window + 1 : 0; }
  std::size_t q_values() const { return std::size_t(tokens) * std::size_t(n_heads) * std::size_t(head_dim); }
  std::size_t kv_values() const { return std::size_t(tokens) * std::size_t(n_kv_heads) * std::size_t(head_dim); }
  // The shape values are read in: head_dim v_head_dim wide.
  AttentionShape of_values() const {
    AttentionShape v = *this;
    if (v_head_dim > 0) v.head_dim = v_head_dim;
    v.v_head_dim = 0;
    return v;
  }
};

// The shape of a forward over `tokens` tokens of this model, with layer `layer`'s score
// rule (its window; the scale and the cap are the model's).
AttentionShape attention_shape(const ModelConfig& config, int tokens, int layer);

// Throw std::invalid_argument (a caller's bug: the gross checks come first) naming
// `what` when the shape has a non-positive dimension or n_kv_heads does not divide
// n_heads, or when `values` does not hold `expected` values, all finite.
void check_attention_shape(const AttentionShape& shape, const char* what);
void check_values(std::span<const double> values, std::size_t expected, const char* what);

}  // namespace kvfid::ref
