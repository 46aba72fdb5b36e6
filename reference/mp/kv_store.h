#pragma once
// Op map (KV store; docs/ops.md): reference reference/mp/kv_store.h | shared cuda/common/kv_encode.h, kv_codes.h, kv_layout.h | kernel encode_rows_kernel, encode_key_groups_kernel, own_read_kernel | twin TwinBackend::store_tiered | tests KvStore*, EngineKvPolicy*
// One layer's K and V as the engine's cache stores them under a KV policy
// (reference/formats/quant/kv_policy.h), exactly: of each value x (after RoPE for K)
//   cold = decode_exact(encode(RN32(x)))   blocks along the token's K/V row (a last
//                                           block past kv_dim padded by repeating the
//                                           row's last element, quant/row_blocks.h),
//                                           or under KIVI (keys) along tokens per
//                                           channel, for groups whose last token is
//                                           present
//   hot  = RN16(x)                          kept only under a hot window or KIVI
// RN32 and RN16 round the exact value once (through float64 rounded to odd, which has
// more than two bits beyond either format), as the engine's FP32 value is the rounding
// of its own computation.
// Enclosures (enclosure.h): given the radii of k and v, every stored value is exact once
// both ends of each ball round (RN32, and RN16 where a hot form is kept) to the same
// value -- rounding is monotone, so the true value rounds there too, and the codes are a
// function of those roundings. Where they differ store_kv throws UndecidedRounding.
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/config.h"
#include "reference/mp/attention.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

struct MpKvStore {
  MpArray k_cold, v_cold;  // [tokens, n_kv_heads, head_dim] at max(53, precision) bits
  MpArray k_hot, v_hot;    // the same shape, or empty when no query reads a hot form
  int hot_window = 0;
  int k_group = 0;  // cold_end's group for keys (kivi_group)

  AttentionKv view() const {
    return {k_cold, k_hot.size() ? k_hot : k_cold, v_cold, v_hot.size() ? v_hot : v_cold, hot_window, k_group};
  }
};

// k, v: [tokens, n_kv_heads, head_dim], the layer's exact (or emulated) values;
// k_radii, v_radii: their radii, or null (exact).
MpKvStore store_kv(const MpArray& k, const MpArray& v, const quant::KvPolicy& policy, int layer, int tokens,
                   const ModelConfig& config, const MpArray* k_radii = nullptr, const MpArray* v_radii = nullptr);

// Latent attention's cache (config.h's LatentAttention): each row of `width` values (the
// latent, then k_pe) stored as K's cold form is, RN32 then the layer's K format along the
// row (blocks padded as a K row's), exactly, with the same proof of every rounding from
// `radii` (null: exact). The row stands for both keys and values, so the policy must give
// K and V one format a layer, and no hot window, KIVI, rotation or eviction
// (InputError(policy source) otherwise). [tokens, width] at max(53, precision) bits.
MpArray store_latent(const MpArray& rows, const MpArray* radii, const quant::KvPolicy& policy, int layer, int tokens,
                     int width);

// The k and v taps: row t holds what query t reads for its own key and value.
// [tokens, n_kv_heads, head_dim] each, at the store's precision.
MpArray own_keys(const MpKvStore& store, int tokens, int kv_dim);
MpArray own_values(const MpKvStore& store, int tokens, int kv_dim);

}  // namespace kvfid::ref
