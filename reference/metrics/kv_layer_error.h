#pragma once
// One layer's KV-cache error, per KV head (round trip of K and V) and per query head
// (what the stored keys do to the golden's queries), and a summary over all layers
// for putting configurations side by side.
#include <span>
#include <vector>

#include "reference/metrics/attention_shape.h"
#include "reference/metrics/key_distortion.h"
#include "reference/metrics/kv_round_trip.h"

namespace kvfid::ref {

struct KvLayerError {
  std::vector<RoundTripError> k;            // [n_kv_heads]
  std::vector<RoundTripError> v;            // [n_kv_heads]
  std::vector<KeyDistortion> query_heads;   // [n_heads]
};

// golden_q [T, n_heads, head_dim]; golden_k, golden_v, stored_v and the keys'
// cold/hot forms [T, n_kv_heads, head_dim]. The K round trip compares the cold form.
KvLayerError kv_layer_error(std::span<const double> golden_q, std::span<const double> golden_k,
                            std::span<const double> golden_v, const KeysAsRead& stored_k,
                            std::span<const double> stored_v, const AttentionShape& shape);

// Over every layer and head. Every query head has the same T (T + 1) / 2 pairs and T
// positions, so the means of the per-head means are the means over all of them.
struct KvSummary {
  double k_relative_rmse_max = 0;   // max over layers and KV heads of RoundTripError::relative_rmse
  double v_relative_rmse_max = 0;
  double qk_mean = 0;               // mean over layers and query heads of KeyDistortion::qk_mean
  double qk_max = 0;
  double attention_kl_mean = 0;
  double attention_kl_max = 0;
};

// Throws std::invalid_argument for no layers or a layer without heads.
KvSummary summarize_kv(const std::vector<KvLayerError>& layers);

}  // namespace kvfid::ref
