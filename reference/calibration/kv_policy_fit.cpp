#include "reference/calibration/kv_policy_fit.h"

#include <cmath>

#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"
#include "reference/util/input_error.h"

namespace kvfid::ref::quant {

KvPolicy resolve_kv_policy(const KvPolicySpec& spec, const std::vector<float>& scales, const ModelConfig& config) {
  const std::string& source = spec.source;
  KvPolicy policy = kv_policy_for(spec, config.n_layers, config.n_kv_heads);
  policy.rotation = make_rotation(spec.rot, config.head_dim, source);
  if (spec.evict) policy.evict = eviction_for_model(*spec.evict, config, source);
  if (!scales.empty()) {
    const std::size_t expected = std::size_t(config.n_layers) * 2 * config.n_kv_heads;
    if (scales.size() != expected)
      throw InputError(source, "KV scales: expected " + std::to_string(expected) + " values ([n_layers=" +
                                   std::to_string(config.n_layers) + ", 2, n_kv_heads=" +
                                   std::to_string(config.n_kv_heads) + "]), got " + std::to_string(scales.size()));
    for (std::size_t i = 0; i < scales.size(); ++i)
      if (!std::isfinite(scales[i]) || !(scales[i] > 0))
        throw InputError(source, "KV scale " + std::to_string(i) + " is " + std::to_string(scales[i]) +
                                     "; scales must be finite and positive");
    for (int l = 0; l < config.n_layers; ++l)
      for (int h = 0; h < config.n_kv_heads; ++h) {
        policy.k[l].scales[h] = scales[(std::size_t(l) * 2 + 0) * config.n_kv_heads + h];
        policy.v[l].scales[h] = scales[(std::size_t(l) * 2 + 1) * config.n_kv_heads + h];
      }
  }
  return policy;
}

EvictionPolicy eviction_for_model(const EvictionPolicy& policy, const ModelConfig& config, const std::string& source) {
  if (config.mla.active())  // the scorers and the account read per-head K and V, which a latent cache does not hold
    throw InputError(source, "eviction '" + policy.spec() + "' on a latent (MLA) cache is not supported: evictions "
                                 "score per-head keys and values, which the cache holds only as latent rows");
  check_eviction_layers(policy, config.n_layers, source);
  bool windowed = false;  // any layer (Gemma 2's last layer is a global one)
  for (int l = 0; l < config.n_layers; ++l) windowed = windowed || config.window_of(l) > 0;
  EvictionPolicy p = policy;
  if (p.kind != EvictionKind::window) {
    if (windowed)
      throw InputError(source, "eviction '" + p.spec() + "' on a model with its own sliding window (" +
                                   std::to_string(config.sliding_window) +
                                   " tokens) is not supported; 'window' keeps just that window");
    return p;
  }
  if (!windowed)
    throw InputError(source, "eviction 'window' on a model without a sliding window (every layer attends to every key)");
  p.layer_windows.clear();
  for (int l = 0; l < config.n_layers; ++l) p.layer_windows.push_back(config.window_of(l));
  return p;
}

double kv_policy_bytes_per_token(const KvPolicy& policy, const ModelConfig& config) {
  const int kv_dim = config.kv_dim();
  double bytes = 0;
  for (std::size_t l = 0; l < policy.k.size(); ++l) {
    const FormatInfo& k = all_formats()[policy.k[l].format];
    const FormatInfo& v = all_formats()[policy.v[l].format];
    bytes += policy.kivi ? double(kv_dim) * k.bytes / k.block : double(row_block_count(kv_dim, k.block)) * k.bytes;
    bytes += double(row_block_count(kv_dim, v.block)) * v.bytes;
  }
  return bytes;
}

int kivi_group(const KvPolicy& policy, int layer) {
  return policy.kivi ? all_formats()[policy.k[layer].format].block : 0;
}

std::optional<FloatFormat> uniform_plain_format(const KvPolicy& policy) {
  if (policy.hot_window > 0 || policy.kivi || policy.k.empty()) return std::nullopt;
  const int format = policy.k[0].format;
  for (std::size_t l = 0; l < policy.k.size(); ++l)
    if (policy.k[l].format != format || policy.v[l].format != format) return std::nullopt;
  return all_formats()[format].plain;
}

}  // namespace kvfid::ref::quant
