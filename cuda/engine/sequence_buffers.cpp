#include "cuda/engine/sequence_buffers.h"

#include "cuda/common/kv_layout.h"
#include "cuda/engine/eviction.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"

namespace kvfid::engine {

EvictedPlanes evicted_planes(const quant::EvictionPolicy& policy, const ModelConfig& c, int capacity) {
  EvictedPlanes p;
  for (int l = 0; l < c.n_layers; ++l) {
    const num::KvLayout one{1, c.n_kv_heads, c.head_dim, eviction_slots(policy, capacity, l)};
    p.layer.push_back(one);
    p.k_at.push_back(p.elements);
    p.elements += one.elements();
  }
  return p;
}

std::size_t latent_element_bytes(const KvPlan& plan) { return plan.fast ? num::bytes_of(*plan.fast) : 4; }

std::size_t latent_row_bytes(const KvPlan& plan, const ModelConfig& c, int layer) {
  const int width = c.mla.kv_lora_rank + c.mla.rope_dim;
  if (plan.fast) return std::size_t(width) * num::bytes_of(*plan.fast);
  const quant::FormatInfo& f = quant::all_formats()[plan.policy.k[std::size_t(layer)].format];
  return std::size_t(quant::row_block_count(width, f.block)) * f.bytes;
}

SequenceSizes sequence_sizes(const KvPlan& plan, const ModelConfig& c, int capacity) {
  SequenceSizes s;
  if (c.mla.active()) {
    const std::size_t rows = std::size_t(c.n_layers) * capacity;
    s.latent = rows * (c.mla.kv_lora_rank + c.mla.rope_dim) * latent_element_bytes(plan);
    s.rk = rows * c.kv_dim() * 4;
    s.rv = rows * c.v_dim() * 4;
    return s;
  }
  if (plan.policy.evict) {  // cold (and FP32 hot) planes of each layer's slots (eviction.h)
    const std::size_t elements = evicted_planes(*plan.policy.evict, c, capacity).elements;
    s.cache = elements * num::bytes_of(plan.evict_planes);
    if (plan.hot_plane) s.hot = elements * 4;
    return s;
  }
  const num::KvLayout layout{c.n_layers, c.n_kv_heads, c.head_dim, capacity};
  s.cache = layout.elements() * (plan.fast ? num::bytes_of(*plan.fast) : 4);
  if (plan.fast) return s;
  if (plan.hot_plane) s.hot = layout.elements() * 4;
  if (plan.policy.kivi) s.raw = layout.plane() * c.n_layers * 4;
  s.code_offsets = plan.code_offsets(c.kv_dim(), capacity);
  s.codes = s.code_offsets.back();
  return s;
}

std::vector<StridedCopy> fork_copies(const KvPlan& plan, const ModelConfig& c, int from_capacity, int to_capacity,
                                     int prefix_length) {
  std::vector<StridedCopy> copies;
  auto add = [&](StridedCopy copy) {
    if (copy.width > 0 && copy.height > 0) copies.push_back(copy);
  };
  if (c.mla.active()) {  // per layer the prefix's cache rows; per (layer, head) its reconstructions
    const std::size_t row = std::size_t(c.mla.kv_lora_rank + c.mla.rope_dim) * latent_element_bytes(plan);
    add({SequenceBuffer::latent, 0, to_capacity * row, 0, from_capacity * row, prefix_length * row,
         std::size_t(c.n_layers)});
    const std::size_t heads = std::size_t(c.n_layers) * c.n_heads, k_row = std::size_t(c.head_dim) * 4,
                      v_row = std::size_t(c.v_head_dim()) * 4;
    add({SequenceBuffer::rk, 0, to_capacity * k_row, 0, from_capacity * k_row, prefix_length * k_row, heads});
    add({SequenceBuffer::rv, 0, to_capacity * v_row, 0, from_capacity * v_row, prefix_length * v_row, heads});
    return copies;
  }
  // Every (layer, K|V, kv head) block of a plane is [capacity, head_dim]: its first
  // prefix_length rows, one block a row of the copy.
  const std::size_t plane_blocks = 2 * std::size_t(c.n_layers) * c.n_kv_heads;
  auto plane_rows = [&](SequenceBuffer buffer, std::size_t blocks, std::size_t elem) {
    const std::size_t row_bytes = std::size_t(c.head_dim) * elem;
    add({buffer, 0, to_capacity * row_bytes, 0, from_capacity * row_bytes, prefix_length * row_bytes, blocks});
  };
  plane_rows(SequenceBuffer::cache, plane_blocks, plan.fast ? num::bytes_of(*plan.fast) : 4);
  if (plan.fast) return copies;
  if (plan.hot_plane) plane_rows(SequenceBuffer::hot, plane_blocks, 4);
  if (plan.policy.kivi) plane_rows(SequenceBuffer::raw, plane_blocks / 2, 4);
  const int kv_dim = c.kv_dim();
  const std::vector<std::size_t> from = plan.code_offsets(kv_dim, from_capacity);
  const std::vector<std::size_t> to = plan.code_offsets(kv_dim, to_capacity);
  for (int l = 0; l < c.n_layers; ++l)
    for (int values = 0; values < 2; ++values) {
      const num::KvCodeSlot& slot = values ? plan.v_codes[l] : plan.k_codes[l];
      const std::size_t region = 2 * std::size_t(l) + values;
      if (!slot.along_tokens) {  // the prefix's token rows: one contiguous run
        const std::size_t bytes = slot.row_block(kv_dim, prefix_length, 0);
        add({SequenceBuffer::codes, to[region], bytes, from[region], bytes, bytes, 1});
      } else {  // per channel, the groups the prefix completes
        add({SequenceBuffer::codes, to[region], slot.group_block(to_capacity, 1, 0), from[region],
             slot.group_block(from_capacity, 1, 0), std::size_t(prefix_length / slot.block) * slot.bytes,
             std::size_t(kv_dim)});
      }
    }
  return copies;
}

}  // namespace kvfid::engine
