#pragma once
// One sequence's KV buffers and what forking it copies, decided once for both backends:
// the twin holds the buffers in host vectors and copies with memcpy, the CUDA engine
// holds them on the device and copies with cudaMemcpy2D; neither decides sizes or
// copies of its own (cuda/README.md says what each backend still owns).
//   cache  the fast path's KvLayout in the fast format, the tiered path's FP32 cold planes,
//          or an eviction's slot planes (EvictedPlanes) in KvPlan::evict_planes
//   hot    tiered with a hot plane: KvLayout, FP32
//   raw    tiered under KIVI: [n_layers] KvLayout K planes, FP32
//   codes  tiered: the slot regions at code_offsets (kv_plan.h)
// Under latent attention (config.h's LatentAttention) none of those, but:
//   latent [n_layers, capacity, kv_lora_rank + rope_dim] the cache rows, in the plain
//          format, or FP32 holding a block format's decoded rows (codes not kept)
//   rk, rv [n_layers, n_heads, capacity, head_dim | v_head_dim] FP32: each cached
//          token's keys and values reconstructed from its row (a pure function of it)
#include <cstddef>
#include <vector>

#include "cuda/engine/kv_plan.h"
#include "reference/model/config.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

enum class SequenceBuffer { cache, hot, raw, codes, latent, rk, rv };

// Under an eviction (eviction.h) each layer's planes hold that layer's slots,
// eviction_slots(policy, capacity, l) per KV head: a window policy's windowed layer its
// window, a global layer the capacity. Layer l's K plane starts k_at[l] elements into the
// buffer, its V plane one plane later; layer[l] lays out the slots of that one layer.
struct EvictedPlanes {
  std::vector<num::KvLayout> layer;  // [n_layers] n_layers = 1, capacity = the layer's slots
  std::vector<std::size_t> k_at;     // [n_layers]
  std::size_t elements = 0;          // every layer's K and V planes
};
EvictedPlanes evicted_planes(const quant::EvictionPolicy& policy, const ModelConfig& config, int capacity);

// Byte sizes of the buffers of a sequence of `capacity` tokens (0: the buffer is not
// used), and the code regions' offsets (KvPlan::code_offsets; empty on the fast path).
struct SequenceSizes {
  std::size_t cache = 0, hot = 0, raw = 0, codes = 0, latent = 0, rk = 0, rv = 0;
  std::vector<std::size_t> code_offsets;
};
SequenceSizes sequence_sizes(const KvPlan& plan, const ModelConfig& config, int capacity);

// Latent attention: the bytes of one element of the cache rows (the plain format's, or
// FP32 holding a block format's decoded rows), and the bytes the cache holds one token's
// row of layer `layer` in (the plain values, or the row's code blocks, padded as a K
// row's: quant/row_blocks.h).
std::size_t latent_element_bytes(const KvPlan& plan);
std::size_t latent_row_bytes(const KvPlan& plan, const ModelConfig& config, int layer);

// `height` rows of `width` bytes: row r from src_offset + r * src_pitch of the source
// sequence's `buffer` to dst_offset + r * dst_pitch of the new one's (cudaMemcpy2D's
// shape).
struct StridedCopy {
  SequenceBuffer buffer;
  std::size_t dst_offset, dst_pitch, src_offset, src_pitch, width, height;
};

// What a fork copies from a sequence of from_capacity tokens into a fresh one of
// to_capacity: every plane block's first prefix_length rows; the prefix's code rows,
// and for KIVI keys only the groups the prefix completes (a group it cuts is encoded
// again when the fork's own token ends it). Copies of no bytes are left out.
std::vector<StridedCopy> fork_copies(const KvPlan& plan, const ModelConfig& config, int from_capacity,
                                     int to_capacity, int prefix_length);

}  // namespace kvfid::engine
