#include "cuda/engine/kv_plan.h"

#include <algorithm>

#include "cuda/engine/packed_model.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

KvPlan make_kv_plan(const quant::KvPolicySpec& spec, const std::vector<float>& scales, const ModelConfig& config) {
  KvPlan p;
  p.policy = quant::resolve_kv_policy(spec, scales, config);
  const std::optional<FloatFormat> plain = quant::uniform_plain_format(p.policy);
  if (plain && !p.policy.evict) p.fast = *plain;  // an eviction's slots are tiered (eviction.h)
  if (plain && p.policy.evict) p.evict_planes = *plain;
  p.hot_plane = p.policy.hot_window > 0 || p.policy.kivi;
  for (int l = 0; l < config.n_layers; ++l) {
    const quant::FormatInfo& k = quant::all_formats()[p.policy.k[l].format];
    const quant::FormatInfo& v = quant::all_formats()[p.policy.v[l].format];
    p.k_codes.push_back({k.block, k.bytes, p.policy.kivi});
    p.v_codes.push_back({v.block, v.bytes, false});
    p.k_group.push_back(quant::kivi_group(p.policy, l));
    p.scales.insert(p.scales.end(), p.policy.k[l].scales.begin(), p.policy.k[l].scales.end());
    p.scales.insert(p.scales.end(), p.policy.v[l].scales.begin(), p.policy.v[l].scales.end());
  }
  return p;
}

std::vector<std::size_t> KvPlan::code_offsets(int kv_dim, int capacity) const {
  std::vector<std::size_t> offsets = {0};
  for (std::size_t l = 0; l < k_codes.size(); ++l) {
    offsets.push_back(offsets.back() + k_codes[l].region(kv_dim, capacity));
    offsets.push_back(offsets.back() + v_codes[l].region(kv_dim, capacity));
  }
  return offsets;
}

std::size_t KvPlan::held_bytes(int layer, bool values, int kv_dim, int length) const {
  if (fast) return std::size_t(length) * kv_dim * num::bytes_of(*fast);
  const num::KvCodeSlot& s = values ? v_codes[layer] : k_codes[layer];
  if (!s.along_tokens) return std::size_t(length) * quant::row_block_count(kv_dim, s.block) * s.bytes;
  const int complete = length / s.block;  // groups with codes
  return std::size_t(complete) * kv_dim * s.bytes + std::size_t(length - complete * s.block) * kv_dim * 2;
}

CacheValues gather_cache_values(const KvPlan& plan, const num::KvLayout& layout, int layer, int length,
                                 const float* k_cold, const float* v_cold, const float* k_hot, const float* v_hot) {
  const int kv_dim = layout.n_kv_heads * layout.head_dim, hd = layout.head_dim;
  CacheValues r;
  auto gather = [&](std::vector<float>& dst, const float* early, const float* late, int switch_at) {
    dst.resize(std::size_t(layout.n_kv_heads) * length * hd);  // [n_kv_heads, length, head_dim]
    for (int h = 0; h < layout.n_kv_heads; ++h)
      for (int j = 0; j < length; ++j)
        std::copy_n((j < switch_at ? early : late) + layout.row(h, j), hd, dst.data() + (std::size_t(h) * length + j) * hd);
  };
  // KIVI keys past the last complete group have no codes yet: their hot values.
  const int block = plan.fast ? 1 : plan.k_codes[layer].block;
  const int coded_keys = !plan.fast && plan.policy.kivi ? length / block * block : length;
  gather(r.k, k_cold, k_hot, coded_keys);
  gather(r.v, v_cold, v_hot, length);
  if (k_hot) gather(r.k_hot, k_hot, k_hot, length);
  if (v_hot) gather(r.v_hot, v_hot, v_hot, length);
  r.k_bytes = plan.held_bytes(layer, false, kv_dim, length);
  r.v_bytes = plan.held_bytes(layer, true, kv_dim, length);
  return r;
}

CacheValues gather_evicted_values(const KvPlan& plan, const num::KvLayout& layout, const CacheEviction& eviction,
                                  int layer, int length, int capacity, const float* k_cold, const float* v_cold,
                                  const float* k_hot, const float* v_hot) {
  const int hd = layout.head_dim, n_kv = layout.n_kv_heads, kv_dim = n_kv * hd;
  CacheValues r;
  const std::size_t size = std::size_t(n_kv) * length * hd;  // [n_kv_heads, length, head_dim]
  r.k.assign(size, 0.0f);
  r.v.assign(size, 0.0f);
  if (k_hot) r.k_hot.assign(size, 0.0f), r.v_hot.assign(size, 0.0f);
  r.cached.assign(std::size_t(n_kv) * length, 0);
  std::size_t kept = 0;
  for (int h = 0; h < n_kv; ++h)
    for (int j : eviction.cached(layer, h)) {
      if (j >= length) continue;
      const std::size_t row = layout.row(h, eviction.slot_map(layer)[std::size_t(h) * capacity + j]);
      const std::size_t dst = (std::size_t(h) * length + j) * hd;
      std::copy_n(k_cold + row, hd, r.k.data() + dst);
      std::copy_n(v_cold + row, hd, r.v.data() + dst);
      if (k_hot) std::copy_n(k_hot + row, hd, r.k_hot.data() + dst), std::copy_n(v_hot + row, hd, r.v_hot.data() + dst);
      r.cached[std::size_t(h) * length + j] = 1;
      ++kept;
    }
  // A row's bytes in the slot formats, shared evenly by its KV heads (exact where the
  // blocks tile the heads; otherwise a block's bytes count in part for each head it spans).
  r.k_bytes = plan.held_bytes(layer, false, kv_dim, 1) * kept / std::size_t(n_kv);
  r.v_bytes = plan.held_bytes(layer, true, kv_dim, 1) * kept / std::size_t(n_kv);
  return r;
}

}  // namespace kvfid::engine
