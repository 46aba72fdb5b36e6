#pragma once
// Op map (latent attention; docs/ops.md): reference reference/mp/latent_attention.h | shared cuda/common/latent_math.h, cuda/common/rope.h, cuda/common/kv_encode.h | twin TwinBackend::latent_layer | kernel latent_*_kernel, absorbed_*_kernel (here), rows of a block format encode_row_kernel (eviction_kernels.cuh), attention attn_indexed_kernel | tests GpuEngine.LatentPathsMatchTwin, EngineLatent*
// DeepSeek's latent attention (reference/model/config.h's LatentAttention) on the
// device, kernel by kernel in the order of the twin's latent_layer: each cache row is
// (latent, k_pe) of width lw = kv_lora_rank + rope_dim, one per (layer, token),
// [capacity, lw] per layer in the cache's plain format, or in FP32 holding a block
// format's decoded row (its codes are not kept). Every value below is the same
// function of the same inputs as the twin's: copies, RoPE pairs, Storage round trips,
// encode_row_block, absorbed_query and the row dot's lanes and butterfly.
#include <cuda_runtime.h>

#include "cuda/common/kv_layout.h"
#include "cuda/common/latent_math.h"
#include "cuda/common/rope.h"
#include "cuda/common/row_dot.h"
#include "cuda/common/storage.h"
#include "cuda/common/warp_reduce.h"
#include "cuda/kernels/kernel_args.cuh"

namespace kvfid::engine::kernels {

using ref::FloatFormat;
using num::Storage;

// lat[r] <- kva[r, 0 .. kv_lora_rank): the latent part of wkv_a's output, normed next.
__global__ void latent_split_kernel(const float* kva, float* lat, LatentShape s) {
  const int r = blockIdx.x, lw = s.kv_lora_rank + s.rope_dim;
  for (int i = threadIdx.x; i < s.kv_lora_rank; i += blockDim.x)
    lat[std::size_t(r) * s.kv_lora_rank + i] = kva[std::size_t(r) * lw + i];
}

// Block per row: the cache row (the normed latent, then k_pe RoPE'd at the row's
// position) assembled in kva, and the rope part of each query head of q turned.
__global__ void latent_rope_kernel(float* kva, const float* lat, float* q, const LatentRow* rows, const float* cos,
                                   const float* sin, int pairs, bool interleaved, LatentShape s) {
  const int r = blockIdx.x, lw = s.kv_lora_rank + s.rope_dim, pos = rows[r].pos;
  float* row = kva + std::size_t(r) * lw;
  for (int i = threadIdx.x; i < s.kv_lora_rank; i += blockDim.x) row[i] = lat[std::size_t(r) * s.kv_lora_rank + i];
  const float* c = cos + std::size_t(pos) * pairs;
  const float* sn = sin + std::size_t(pos) * pairs;
  for (int idx = threadIdx.x; idx < (1 + s.n_heads) * pairs; idx += blockDim.x) {
    const int h = idx / pairs, i = idx % pairs;  // h 0: k_pe, h > 0: query head h - 1
    float* v = h == 0 ? row + s.kv_lora_rank : q + std::size_t(r) * s.q_dim() + (h - 1) * s.head_dim + s.nope;
    int a, b;
    num::rope_dims(interleaved, s.rope_dim, i, a, b);
    num::rope_pair(v[a], v[b], c[i], sn[i]);
  }
}

// Block per row, a plain cache format K: the row stored, read back (kva) as the cache
// holds it, its latent part into lat (what wkv_b reconstructs from).
template <FloatFormat K>
__global__ void latent_store_kernel(float* kva, float* lat, const LatentRow* rows, LatentShape s) {
  const int r = blockIdx.x, lw = s.kv_lora_rank + s.rope_dim;
  float* row = kva + std::size_t(r) * lw;
  auto* cached = static_cast<typename Storage<K>::T*>(rows[r].row);
  for (int i = threadIdx.x; i < lw; i += blockDim.x) {
    cached[i] = Storage<K>::store(row[i]);
    row[i] = Storage<K>::load(cached[i]);
    if (i < s.kv_lora_rank) lat[std::size_t(r) * s.kv_lora_rank + i] = row[i];
  }
}

// Block per row (block formats, after encode_row_kernel wrote each row's decode() into
// its FP32 cache row): kva's row becomes the cache row, its latent part lat.
__global__ void latent_read_back_kernel(float* kva, float* lat, const LatentRow* rows, LatentShape s) {
  const int r = blockIdx.x, lw = s.kv_lora_rank + s.rope_dim;
  const float* cached = static_cast<const float*>(rows[r].row);
  for (int i = threadIdx.x; i < lw; i += blockDim.x) {
    kva[std::size_t(r) * lw + i] = cached[i];
    if (i < s.kv_lora_rank) lat[std::size_t(r) * s.kv_lora_rank + i] = cached[i];
  }
}

// Block per row: head h's key (wkv_b's nope part, then the row's k_pe) and value into the
// taps k [rows, n_heads, head_dim], v [rows, n_heads, v_head_dim] and the sequence's
// reconstructions at the row's position.
__global__ void latent_scatter_kernel(const float* kvb, const float* kva, float* k, float* v, const LatentRow* rows,
                                      LatentShape s) {
  const int r = blockIdx.x, lw = s.kv_lora_rank + s.rope_dim, kv_b = s.nope + s.v_head_dim;
  const LatentRow row = rows[r];
  const float* kv = kvb + std::size_t(r) * s.n_heads * kv_b;
  const float* k_pe = kva + std::size_t(r) * lw + s.kv_lora_rank;
  for (int idx = threadIdx.x; idx < s.n_heads * s.head_dim; idx += blockDim.x) {
    const int h = idx / s.head_dim, d = idx % s.head_dim;
    const float x = d < s.nope ? kv[h * kv_b + d] : k_pe[d - s.nope];
    k[std::size_t(r) * s.q_dim() + idx] = x;
    row.rk[(std::size_t(h) * row.capacity + row.pos) * s.head_dim + d] = x;
  }
  for (int idx = threadIdx.x; idx < s.n_heads * s.v_head_dim; idx += blockDim.x) {
    const int h = idx / s.v_head_dim, d = idx % s.v_head_dim;
    const float x = kv[h * kv_b + s.nope + d];
    v[std::size_t(r) * s.n_heads * s.v_head_dim + idx] = x;
    row.rv[(std::size_t(h) * row.capacity + row.pos) * s.v_head_dim + d] = x;
  }
}

// Thread per (row, head, c < lw): the absorbed query [rows, n_heads, lw], W_UK_h^T q_nope
// (absorbed_query) then q_pe.
template <FloatFormat W>
__global__ void absorbed_query_kernel(const typename Storage<W>::T* wkv_b, const float* q, float* qabs, int rows,
                                      LatentShape s) {
  const int lw = s.kv_lora_rank + s.rope_dim, kv_b = s.nope + s.v_head_dim;
  const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (idx >= (long long)rows * s.n_heads * lw) return;
  const int c = int(idx % lw), h = int(idx / lw % s.n_heads), r = int(idx / lw / s.n_heads);
  const float* qh = q + std::size_t(r) * s.q_dim() + h * s.head_dim;
  qabs[idx] = c < s.kv_lora_rank
                  ? num::absorbed_query<W>(wkv_b + std::size_t(h) * kv_b * s.kv_lora_rank, s.kv_lora_rank, qh, s.nope, c)
                  : qh[s.nope + c - s.kv_lora_rank];
}

// Warp per (row, head, d < v_head_dim): att[r, h * v_head_dim + d] = W_UV_h row d (wkv_b's
// row h * (nope + v_head_dim) + nope + d) dotted with the head's latent output olat
// [rows, n_heads, kv_lora_rank], the row dot's lanes and butterfly (row_dot.h).
template <FloatFormat W>
__global__ void absorbed_output_kernel(const typename Storage<W>::T* wkv_b, const float* olat, float* att, int rows,
                                       LatentShape s) {
  const int kv_b = s.nope + s.v_head_dim;
  const long long warp = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / num::kWarp;
  const int lane = threadIdx.x % num::kWarp;
  if (warp >= (long long)rows * s.n_heads * s.v_head_dim) return;  // uniform over the warp
  const int d = int(warp % s.v_head_dim), h = int(warp / s.v_head_dim % s.n_heads);
  const int r = int(warp / s.v_head_dim / s.n_heads);
  const auto* w = wkv_b + (std::size_t(h) * kv_b + s.nope + d) * s.kv_lora_rank;
  const float* x = olat + (std::size_t(r) * s.n_heads + h) * s.kv_lora_rank;
  const float dot = num::butterfly_device<num::Add>(num::row_dot_lane<W>(w, x, s.kv_lora_rank, lane));
  if (lane == 0) att[std::size_t(r) * s.n_heads * s.v_head_dim + h * s.v_head_dim + d] = dot;
}

}  // namespace kvfid::engine::kernels
