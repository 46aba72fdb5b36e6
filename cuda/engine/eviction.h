#pragma once
// Op map (KV eviction; docs/ops.md): spec reference/formats/quant/eviction_spec.h | reference reference/mp/eviction_policy.h, evicting_attention.h | engine CacheEviction (here; the host's, for both backends) | twin TwinBackend::attend_evicting | kernel evict_store_kernel, attn_indexed_kernel (cuda/kernels/cuda_eviction.cu) | tests EngineEviction*, GpuEngine.EvictionMatchesTwin
// One sequence's evicting KV cache, as the engine keeps it: per (layer, KV head) a fixed
// number of token slots, the positions they hold, and the policy's FP32 scorer. The
// policy's rules (eviction_spec.h) are applied to the engine's own probabilities, those
// its attention weighted by (attn_prob of each score and the row's final stats); every
// sum runs in the order the spec writes, so a decision is a function of those values.
//
// Slots: the budget B counts past keys, so a cache holds at most B + 1 tokens (the
// query's own included) and a sequence of capacity C needs min(C, B + 1) slots per
// (layer, KV head). An evicted token's slot is free for the next token: evicted keys
// are gone from the cache, and the memory is that of the slots. A token goes to the
// slot freed last (a stack, so the choice follows from the evictions alone; where a
// token lands changes no value: the attention reads kept keys in position order,
// whatever their slots).
#include <cstddef>
#include <deque>
#include <vector>

#include "reference/formats/quant/eviction_spec.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

// Slots per KV head of layer `layer` of a sequence of `capacity` tokens under `policy`
// (what that layer's planes are laid out for: sequence_buffers.h).
int eviction_slots(const quant::EvictionPolicy& policy, int capacity, int layer);

// The positions to evict from `keys` (ascending): `count` of those not protected, the
// lowest scores[i] first, equal scores the older position first (eviction_spec.h); a NaN
// score (a gross failure upstream) sorts below every number. Ascending positions.
std::vector<int> lowest_scores_f32(const std::vector<int>& keys, const std::vector<float>& scores,
                                   const std::vector<bool>& protect, int count);

// One cache's scorer (a layer and a KV head), FP32.
class KeyScorer {
 public:
  KeyScorer(const quant::EvictionPolicy& policy, int capacity, int layer);
  // key: [head_dim] the cold form of key `pos` as the cache now holds it (knorm's score).
  void cached(int pos, const float* key, int head_dim);
  // Query t attended `keys` (ascending, its own last): probs [group, keys.size()] at a
  // row stride of `stride` floats, the group's query heads in order.
  void attended(int t, const std::vector<int>& keys, const float* probs, std::size_t stride, int group);
  // The positions to evict after query t (ascending).
  std::vector<int> evict(int t, const std::vector<int>& keys);

 private:
  quant::EvictionPolicy policy_;
  int budget_;
  std::vector<float> received_;  // h2o: [capacity] mass received so far
  std::vector<float> neg_norm2_; // knorm: [capacity] -|k|^2
  std::vector<float> last_;      // tova: the latest query's group sums, aligned with its keys
  struct Row {
    std::vector<int> keys;
    std::vector<float> attention;  // group sums
  };
  std::deque<Row> window_;  // snapkv: the last OBS queries
};

class CacheEviction {
 public:
  CacheEviction(const quant::EvictionPolicy& policy, int n_layers, int n_kv_heads, int capacity);
  // The slot of position `pos` in (layer, kv_head): taken from the free ones. Positions
  // come in increasing order, one at a time (a query attends before the next arrives).
  int place(int layer, int kv_head, int pos);
  // [n_kv_heads, capacity] per layer: the slot of each position, -1 when not cached.
  const int* slot_map(int layer) const { return slot_of_[std::size_t(layer)].data(); }
  // Cached positions of (layer, kv_head), ascending (after place: the query's own last).
  const std::vector<int>& cached(int layer, int kv_head) const { return cache(layer, kv_head).kept; }
  KeyScorer& scorer(int layer, int kv_head) { return cache(layer, kv_head).scorer; }
  // After query pos of (layer, kv_head) attended and its scorer was told: evict, free
  // the slots and record the events.
  void evict_after(int layer, int kv_head, int pos);
  // After query pos of layer `layer` attended, the host's half of the step for both
  // backends: each KV head's scorer told the probabilities its group's query heads
  // weighted cached(layer, h) by, probs[(h * group + g) * stride + i] (i: the key's index
  // in cached()), then evict_after.
  void attended(int layer, int pos, const float* probs, std::size_t stride, int group);
  // Layer `layer`'s kept keys as a device reads them (the CUDA engine's key lists,
  // cuda/kernels/indexed_attention.cuh): lists[h * width + i] the position of cached key
  // i of KV head h, lists[(n_kv_heads + h) * width + i] its slot, then
  // lists[2 * n_kv_heads * width + h] their count; width: at least the layer's slots.
  void key_lists(int layer, int width, std::vector<int>& lists) const;
  // Every key evicted so far: layer, KV head, then position order within a cache.
  std::vector<quant::EvictionEvent> events() const;

 private:
  struct Cache {
    KeyScorer scorer;
    std::vector<int> kept;    // ascending positions
    std::vector<int> free;    // free slots, a stack (the last freed is taken)
    std::vector<quant::EvictionEvent> evicted;
  };
  Cache& cache(int layer, int kv_head) { return caches_[std::size_t(layer) * n_kv_heads_ + kv_head]; }
  const Cache& cache(int layer, int kv_head) const { return caches_[std::size_t(layer) * n_kv_heads_ + kv_head]; }

  int n_kv_heads_, capacity_;
  std::vector<Cache> caches_;                // [n_layers, n_kv_heads]
  std::vector<std::vector<int>> slot_of_;   // [n_layers][n_kv_heads * capacity]
};

}  // namespace kvfid::engine
