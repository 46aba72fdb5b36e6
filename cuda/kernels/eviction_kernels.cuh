#pragma once
// Op map (KV eviction; docs/ops.md): spec reference/formats/quant/eviction_spec.h | reference reference/mp/evicting_attention.h | engine CacheEviction (cuda/engine/eviction.h) | twin TwinBackend::store_evicting, attend_evicting | kernel encode_row_kernel, evict_store_kernel (here), attention attn_indexed_kernel | tests GpuEngine.EvictionMatchesTwin, EngineEviction*
// An evicting cache's store of one token on the device, as the twin's store_evicting:
// the token's K and V rows encoded in the layer's formats and decoded (kv_encode.h
// through a one-token layout; the codes are not kept), each KV head's decoded values
// placed in the slot the host's CacheEviction gave it (in the slot planes' format K:
// exact, the decoded values are K's), the FP16 hot forms beside them under a hot window,
// and the row's k and v replaced by what its own query reads.
#include <cuda_runtime.h>

#include "cuda/common/kv_encode.h"
#include "cuda/common/kv_layout.h"
#include "cuda/common/storage.h"

namespace kvfid::engine::kernels {

using ref::FloatFormat;
using num::Storage;

// Thread b of the grid encodes block b of the row x (one token of `one`, whose plane row
// is the row: an eviction's [kv_dim] K or V, a latent cache's row as one head),
// decode() into `decoded`; codes: scratch.
template <class C>
__global__ void encode_row_kernel(const float* x, num::KvLayout one, const float* scales, std::uint8_t* codes,
                                    float* decoded) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= quant::row_block_count(one.n_kv_heads * one.head_dim, C::kBlock)) return;
  num::encode_row_block<C>(x, b, 0, one, scales, codes, decoded);
}

// One block: element i = h * head_dim + d of the token's rows into slot slots[h] of the
// layer's planes `lay` (K format; hot planes FP32, or null), then k and v its own reads:
// the hot forms when its query reads them (own_hot), else the decoded ones.
template <FloatFormat K>
__global__ void evict_store_kernel(float* k, float* v, const float* row_k, const float* row_v, const int* slots,
                                   typename Storage<K>::T* k_plane, typename Storage<K>::T* v_plane, float* k_hot,
                                   float* v_hot, num::KvLayout lay, bool own_hot) {
  const int hd = lay.head_dim;
  for (int i = threadIdx.x; i < lay.n_kv_heads * hd; i += blockDim.x) {
    const std::size_t at = lay.row(i / hd, slots[i / hd]) + i % hd;
    k_plane[at] = Storage<K>::store(row_k[i]);
    v_plane[at] = Storage<K>::store(row_v[i]);
    if (k_hot) {
      k_hot[at] = num::hot_value(k[i]);
      v_hot[at] = num::hot_value(v[i]);
    }
    k[i] = own_hot ? num::hot_value(k[i]) : row_k[i];
    v[i] = own_hot ? num::hot_value(v[i]) : row_v[i];
  }
}

}  // namespace kvfid::engine::kernels
