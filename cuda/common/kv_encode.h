#pragma once
// Op map (KV store; docs/ops.md): reference reference/mp/kv_store.h | shared cuda/common/kv_encode.h, kv_codes.h, kv_layout.h | kernel encode_rows_kernel, encode_key_groups_kernel, own_read_kernel | twin TwinBackend::store_tiered | tests KvStore*, EngineKvPolicy*
// The tiered KV path's stores (cuda/engine/kv_plan.h), one block or value at a time,
// shared by the twin and the CUDA kernels so both run the same code: a codec's encode
// and decode use only integer and correctly rounded IEEE operations (codec.h), so the
// two produce the same code bytes and the same FP32 cold values.
#include <cstdint>

#include "reference/numeric/convert.h"
#include "cuda/common/kv_codes.h"
#include "cuda/common/kv_layout.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/formats/quant/row_blocks.h"

namespace kvfid::engine::num {
using namespace kvfid::ref::num;  // the numeric core's conversions
using namespace kvfid::ref;  // the specification's names: the layer below

// The hot form: FP32 holding the FP16 rounding of x.
KVFID_HD float hot_value(float x) { return f16_to_f32(f32_to_f16(x)); }

// Block b of token pos's K or V row: encodes row[b*B .. b*B+B) (row: [kv_dim], FP32;
// past kv_dim the last block is padded, quant/row_blocks.h) into the slot's codes and
// writes each real element's decode() into the cold plane (KvLayout plane of this
// layer's K or V). scales: [n_kv_heads], the block's static scale is its first
// element's head's.
template <class C>
KVFID_HD void encode_row_block(const float* row, int b, int pos, const KvLayout& lay, const float* scales,
                               std::uint8_t* codes, float* cold) {
  const int hd = lay.head_dim, kv_dim = lay.n_kv_heads * hd;
  float x[C::kBlock];
  quant::gather_padded_block(row, kv_dim, C::kBlock, b, x);
  const quant::CodecParams p{scales[b * C::kBlock / hd]};
  std::uint8_t* block = codes + KvCodeSlot{C::kBlock, C::kBytes, false}.row_block(kv_dim, pos, b);
  C::encode(x, block, p);
  for (int i = 0; i < quant::real_elements(kv_dim, C::kBlock, b); ++i) {
    const int e = b * C::kBlock + i;
    cold[lay.row(e / hd, pos) + e % hd] = C::decode(block, i, p);
  }
}

// KIVI: group g of key channel c (tokens g*B .. g*B+B), encoded from the raw FP32 keys
// (raw: this layer's KvLayout-shaped K plane), decoded into the cold plane.
template <class C>
KVFID_HD void encode_key_group(const float* raw, int channel, int g, const KvLayout& lay, const float* scales,
                               std::uint8_t* codes, float* cold) {
  const int h = channel / lay.head_dim, d = channel % lay.head_dim;
  float x[C::kBlock];
  for (int i = 0; i < C::kBlock; ++i) x[i] = raw[lay.row(h, g * C::kBlock + i) + d];
  const quant::CodecParams p{scales[h]};
  std::uint8_t* block = codes + KvCodeSlot{C::kBlock, C::kBytes, true}.group_block(lay.capacity, channel, g);
  C::encode(x, block, p);
  for (int i = 0; i < C::kBlock; ++i) cold[lay.row(h, g * C::kBlock + i) + d] = C::decode(block, i, p);
}

// The plane (cold or hot) a query at position t reads for key or value j.
KVFID_HD const float* plane_read(const float* cold, const float* hot, int j, int t, int hot_window, int group) {
  return j < quant::cold_end(t, hot_window, group) ? cold : hot;
}

}  // namespace kvfid::engine::num
