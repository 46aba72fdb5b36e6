#pragma once
// Op map (latent attention; docs/ops.md): reference reference/mp/latent_attention.h | shared cuda/common/latent_math.h | twin TwinBackend::latent_layer | kernel absorbed_query_kernel (cuda/kernels/latent_kernels.cuh) | tests EngineLatent*, GpuEngine.LatentPathsMatchTwin, MpLatentAttention.*
// The absorbed decode path of latent attention (reference/model/config.h's
// LatentAttention). Head h's keys are k = (W_UK_h c, k_pe) for a cached row (c, k_pe), so
// q.k = (W_UK_h^T q_nope).c + q_pe.k_pe: the query absorbed into the latent's space reads
// the cached rows as they are, one "key head" of kv_lora_rank + rope_dim shared by every
// query head, and the values likewise, sum_j p_j v_j = W_UV_h (sum_j p_j c_j). The sums
// reassociate, so the two paths differ in their roundings only (EngineLatent tests).
#include "cuda/common/storage.h"
#include "reference/numeric/ieee.h"

namespace kvfid::engine::num {

// Element c of head h's absorbed query: column c of the head's key block of wkv_b
// (w_keys: its nope rows of kv_lora_rank, row-major) dotted with q_nope, fma in
// increasing i from +0. One element per GPU thread.
template <FloatFormat W>
KVFID_HD float absorbed_query(const typename Storage<W>::T* w_keys, int kv_lora_rank, const float* q_nope, int nope,
                              int c) {
  float acc = 0.0f;
  for (int i = 0; i < nope; ++i) acc = fma(Storage<W>::load(w_keys[std::size_t(i) * kv_lora_rank + c]), q_nope[i], acc);
  return acc;
}

}  // namespace kvfid::engine::num
