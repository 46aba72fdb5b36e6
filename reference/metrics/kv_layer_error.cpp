#include "reference/metrics/kv_layer_error.h"

#include <algorithm>
#include <stdexcept>

namespace kvfid::ref {

KvLayerError kv_layer_error(std::span<const double> golden_q, std::span<const double> golden_k,
                            std::span<const double> golden_v, const KeysAsRead& stored_k,
                            std::span<const double> stored_v, const AttentionShape& shape) {
  return {round_trip_error_per_head(golden_k, stored_k.cold, shape),
          round_trip_error_per_head(golden_v, stored_v, shape.of_values()),
          key_distortion_per_query_head(golden_q, golden_k, stored_k, shape)};
}

KvSummary summarize_kv(const std::vector<KvLayerError>& layers) {
  if (layers.empty()) throw std::invalid_argument("summarize_kv: no layers");
  KvSummary s;
  long double qk_sum = 0, kl_sum = 0;
  std::size_t query_heads = 0;
  for (const KvLayerError& layer : layers) {
    if (layer.k.empty() || layer.v.empty() || layer.query_heads.empty())
      throw std::invalid_argument("summarize_kv: a layer without heads");
    for (const RoundTripError& e : layer.k) s.k_relative_rmse_max = std::max(s.k_relative_rmse_max, e.relative_rmse());
    for (const RoundTripError& e : layer.v) s.v_relative_rmse_max = std::max(s.v_relative_rmse_max, e.relative_rmse());
    for (const KeyDistortion& d : layer.query_heads) {
      qk_sum += d.qk_mean;
      kl_sum += d.attention_kl_mean;
      s.qk_max = std::max(s.qk_max, d.qk_max);
      s.attention_kl_max = std::max(s.attention_kl_max, d.attention_kl_max);
      ++query_heads;
    }
  }
  s.qk_mean = double(qk_sum / (long double)query_heads);
  s.attention_kl_mean = double(kl_sum / (long double)query_heads);
  return s;
}

}  // namespace kvfid::ref
