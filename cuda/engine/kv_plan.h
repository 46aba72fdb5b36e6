#pragma once
// How the engine (twin and CUDA alike) lays out a sequence's KV cache for a policy
// (reference/formats/quant/kv_policy.h).
//
// Fast path: a policy whose K and V are all one plain format (f32, f16 or bf16), with
// neither a hot window nor KIVI, is one plane per layer's K and V in that format
// (cuda/common/kv_layout.h), stored and read as before quantization existed.
//
// Tiered path, every other policy (and every evicting one: its planes hold slots, not
// positions, and its codes are not kept; eviction.h). Per layer and K|V:
//   codes  the slot format's blocks (cuda/common/kv_codes.h), encoded from the FP32 K
//          (after RoPE) or V: a token's row blocks when it is appended, a KIVI key
//          group when its last token is appended
//   cold   FP32, the codec's decode() of the codes            KvLayout, FP32
//   hot    FP32 holding the FP16 rounding of K/V (only under a hot window or KIVI)
//   raw    under KIVI, the FP32 keys a group is encoded from (kept so a forked
//          sequence can complete a group it shares with its source)
// A query at position t reads key j from cold if j < cold_end(t, hot_window, group),
// else from hot (group: the K format's block under KIVI for keys, 0 for values).
// Holding decode()'s FP32 values next to the codes is numerically identical to decoding
// inside the attention loop: decode() is a pure function of a block's bytes and the
// static scale, so it gives the same FP32 value whenever it is called, and the
// attention then does the same FP32 arithmetic on it (the fast path's, with K = f32).
#include <optional>
#include <string>
#include <vector>

#include "cuda/common/kv_codes.h"
#include "cuda/common/kv_layout.h"
#include "cuda/common/storage.h"
#include "cuda/engine/backend.h"
#include "cuda/engine/eviction.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/config.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

struct KvPlan {
  quant::KvPolicy policy;
  std::optional<FloatFormat> fast;  // set: the fast path in this format
  // Under an eviction, the format its slot planes hold: the storage's when that is one
  // plain format (f32, f16 or bf16, which the decoded values are exactly), else FP32.
  FloatFormat evict_planes = FloatFormat::f32;
  bool hot_plane = false;        // tiered: hot_window > 0 or KIVI
  std::vector<num::KvCodeSlot> k_codes, v_codes;  // [n_layers], tiered only
  std::vector<int> k_group;                        // [n_layers] cold_end's group for keys
  std::vector<float> scales;                       // [n_layers, 2 (K, V), n_kv_heads]
  // Layer l's K or V scales, [n_kv_heads].
  const float* layer_scales(int layer, bool values, int n_kv_heads) const {
    return scales.data() + (std::size_t(2 * layer) + values) * n_kv_heads;
  }

  // Byte offsets of each slot's code region in a sequence of `capacity` tokens:
  // [n_layers, 2 (K, V)] then the total at the end.
  std::vector<std::size_t> code_offsets(int kv_dim, int capacity) const;
  // Bytes the cache holds `length` tokens of layer l's K or V in: their codes, or for
  // the keys of an incomplete KIVI group (no codes yet) their FP16 values.
  std::size_t held_bytes(int layer, bool values, int kv_dim, int length) const;
};

// One layer's CacheValues (backend.h) of a sequence's first `length` tokens from host
// copies of its planes, each KvLayout-shaped [n_kv_heads, capacity, head_dim] FP32:
// the cold planes (on the fast path: the stored values decoded) and the hot ones (null
// without a hot plane).
CacheValues gather_cache_values(const KvPlan& plan, const num::KvLayout& layout, int layer, int length,
                                 const float* k_cold, const float* v_cold, const float* k_hot, const float* v_hot);

// The same under an eviction (eviction.h): the tokens still cached, by their slots;
// evicted rows zero and `cached` telling which; the bytes those tokens are held in.
CacheValues gather_evicted_values(const KvPlan& plan, const num::KvLayout& layout, const CacheEviction& eviction,
                                  int layer, int length, int capacity, const float* k_cold, const float* v_cold,
                                  const float* k_hot, const float* v_hot);

// Resolves the policy for `config` (quant::resolve_kv_policy; InputError(spec.source, ...)).
KvPlan make_kv_plan(const quant::KvPolicySpec& spec, const std::vector<float>& scales, const ModelConfig& config);

}  // namespace kvfid::engine
