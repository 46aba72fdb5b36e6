#pragma once
// Op map (attention over listed keys; docs/ops.md): reference reference/mp/latent_attention.h, reference/mp/evicting_attention.h | shared cuda/common/attention_math.h | twin TwinBackend::attend (ReconstructedKv, LatentRows, SlotKv) | kernel attn_indexed_kernel, attn_indexed_probs_kernel (here) | tests GpuEngine.LatentPathsMatchTwin, GpuEngine.EvictionMatchesTwin
// Attention whose keys are not one KvLayout plane read by position: latent attention's
// reconstructed keys (a key head per query head, values v_head_dim wide), its cached
// rows (one key head of kv_lora_rank + rope_dim shared by every query head, the values
// their latent part), and an eviction's slots (the kept positions listed, each at its
// slot). The twin reads all three through attend(); this kernel is attend() with a
// block where the twin has a worker, in the same order (attention_math.h): per split of
// `split` keys the scores (attn_score, capped), the maximum and the sum by butterfly per
// warp of 32 keys then warps in order (only warps holding keys, as the twin), the value
// sums one fma chain per output over the split's keys in order, and the splits folded
// in increasing order. The optimized plane kernels (kernels.cuh) keep their own loads;
// this one loads element by element, which changes how, not what, it adds.
#include <cuda_runtime.h>

#include <climits>

#include "cuda/common/attention_math.h"
#include "cuda/common/storage.h"
#include "cuda/common/warp_reduce.h"

namespace kvfid::engine::kernels {

using ref::FloatFormat;
using num::Storage;

// One step row's keys and values: key i of key head g is at
//   k + g * k_head + slot(i) * k_step   (elements of the cache's format K)
// and its value likewise in v; a key at a position >= k_end (values: v_end) is read from
// the FP32 hot planes instead, at the same offsets (a hot window; K is then f32).
// Keys: with `pos` null, positions 0 .. keys - 1, each its own slot; else per key head g
// count[g] keys at pos[g * list + i], slots slot[g * list + i].
struct IndexedKeys {
  const void* k;
  const void* v;
  const float* k_hot;  // null: no hot plane
  const float* v_hot;
  long long k_head, v_head;  // elements between key heads
  int k_step, v_step;        // elements between keys
  int k_end, v_end;          // cold_end of this row's keys and values
  int keys;                  // pos null: the row's keys 0 .. keys - 1
  const int* pos;            // [key heads, list] or null
  const int* slot;           // [key heads, list]
  const int* count;          // [key heads]
  int list;
};

struct IndexedArgs {
  const float* q;         // query head h of row r at q + r * q_row + h * q_head, kw floats
  long long q_row;
  int q_head;
  const IndexedKeys* rows;  // [rows]
  int n_heads, group;       // query heads; per key head (query head h reads key head h / group)
  int kw, vw;               // key width (what q is dotted with), value width
  float scale, softcap;
  int split;                // keys per split (split_keys.h), at most kSplit
  float* out;               // head h of row r's values at out + r * out_row + h * out_head
  long long out_row;
  int out_head;
  float* stats;             // [rows, n_heads, 2] final m and l
};

__device__ __forceinline__ int indexed_count(const IndexedKeys& k, int g) { return k.pos ? k.count[g] : k.keys; }
__device__ __forceinline__ int indexed_pos(const IndexedKeys& k, int g, int i) {
  return k.pos ? k.pos[std::size_t(g) * k.list + i] : i;
}
__device__ __forceinline__ int indexed_slot(const IndexedKeys& k, int g, int i) {
  return k.pos ? k.slot[std::size_t(g) * k.list + i] : i;
}

template <FloatFormat K>
__device__ __forceinline__ const typename Storage<K>::T* indexed_key(const IndexedKeys& k, int g, int i) {
  const std::size_t at = std::size_t(g * k.k_head) + std::size_t(indexed_slot(k, g, i)) * k.k_step;
  if (k.k_hot && indexed_pos(k, g, i) >= k.k_end) return reinterpret_cast<const typename Storage<K>::T*>(k.k_hot + at);
  return static_cast<const typename Storage<K>::T*>(k.k) + at;
}
template <FloatFormat K>
__device__ __forceinline__ const typename Storage<K>::T* indexed_value(const IndexedKeys& k, int g, int i) {
  const std::size_t at = std::size_t(g * k.v_head) + std::size_t(indexed_slot(k, g, i)) * k.v_step;
  if (k.v_hot && indexed_pos(k, g, i) >= k.v_end) return reinterpret_cast<const typename Storage<K>::T*>(k.v_hot + at);
  return static_cast<const typename Storage<K>::T*>(k.v) + at;
}

// Shared floats of a block of `heads` query heads.
__host__ __device__ inline std::size_t indexed_shared_floats(int heads, int kw, int vw) {
  return std::size_t(heads) * (kw + num::kSplit + num::kSplitWarps + 2 + vw + 2);
}

// Block (row, key head x head block) of kSplit threads: heads first .. first + count of
// the key head's group (a query head's values do not depend on which others share its
// block). Thread t scores key i0 + t of each split.
template <FloatFormat K>
__global__ void __launch_bounds__(num::kSplit) attn_indexed_kernel(IndexedArgs a, int heads_per_block) {
  extern __shared__ float smem[];
  const int head_blocks = (a.group + heads_per_block - 1) / heads_per_block;
  const int r = blockIdx.x, g = blockIdx.y / head_blocks;
  const int first = (blockIdx.y % head_blocks) * heads_per_block;
  const int count = min(heads_per_block, a.group - first);
  const int head0 = g * a.group + first;
  const IndexedKeys keys = a.rows[r];
  const int n = indexed_count(keys, g);
  const int t = threadIdx.x, warp = t / num::kWarp, lane = t % num::kWarp;
  float* q = smem;                           // [count, kw]
  float* p = q + count * a.kw;               // [count, kSplit] scores, then probabilities
  float* red = p + count * num::kSplit;      // [count, kSplitWarps]
  float* m = red + count * num::kSplitWarps; // [count] the split's maximum
  float* l = m + count;                      // [count] its sum
  float* run_acc = l + count;                // [count, vw]
  float* run_m = run_acc + count * a.vw;     // [count]
  float* run_l = run_m + count;              // [count]
  for (int i = t; i < count * a.kw; i += blockDim.x)
    q[i] = a.q[r * a.q_row + std::size_t(head0 + i / a.kw) * a.q_head + i % a.kw];
  __syncthreads();
  for (int sp = 0; sp < num::split_count(n, a.split); ++sp) {
    const int i0 = sp * a.split, i1 = min(i0 + a.split, n), keys_in = i1 - i0;
    const bool valid = i0 + t < i1;
    for (int h = 0; h < count; ++h)
      p[h * num::kSplit + t] = valid ? num::capped_score(num::attn_score<K>(q + h * a.kw, indexed_key<K>(keys, g, i0 + t),
                                                                            a.kw, a.scale),
                                                         a.softcap)
                                     : -num::infinity();
    __syncthreads();
    for (int h = 0; h < count; ++h) {
      const float wm = num::butterfly_device<num::Max>(p[h * num::kSplit + t]);
      if (lane == 0) red[h * num::kSplitWarps + warp] = wm;
    }
    __syncthreads();
    if (t < count) {  // the warps holding keys, in order (the twin skips the others)
      float mm = red[t * num::kSplitWarps];
      for (int w = 1; w * num::kWarp < keys_in; ++w) mm = num::max(mm, red[t * num::kSplitWarps + w]);
      m[t] = mm;
    }
    __syncthreads();
    for (int h = 0; h < count; ++h) {
      const float e = valid ? num::exp_portable(p[h * num::kSplit + t] - m[h]) : 0.0f;
      p[h * num::kSplit + t] = e;
      const float ws = num::butterfly_device<num::Add>(e);
      if (lane == 0) red[h * num::kSplitWarps + warp] = ws;
    }
    __syncthreads();
    if (t < count) {
      float ll = red[t * num::kSplitWarps];
      for (int w = 1; w * num::kWarp < keys_in; ++w) ll = ll + red[t * num::kSplitWarps + w];
      l[t] = ll;
    }
    __syncthreads();
    for (int idx = t; idx < count * a.vw; idx += blockDim.x) {
      const int h = idx / a.vw, d = idx % a.vw;
      float acc = 0.0f;
      for (int i = i0; i < i1; ++i)
        acc = num::fma(p[h * num::kSplit + i - i0], Storage<K>::load(indexed_value<K>(keys, g, i)[d]), acc);
      run_acc[idx] = sp == 0 ? acc : num::fold_value(run_acc[idx], acc, num::fold_factors(run_m[h], m[h]));
    }
    __syncthreads();  // every value folded with the running m before it moves
    if (t < count) {
      if (sp == 0) {
        run_m[t] = m[t];
        run_l[t] = l[t];
      } else {
        const num::SoftmaxStats s = num::fold_stats({run_m[t], run_l[t]}, l[t], num::fold_factors(run_m[t], m[t]));
        run_m[t] = s.m;
        run_l[t] = s.l;
      }
    }
    __syncthreads();
  }
  for (int idx = t; idx < count * a.vw; idx += blockDim.x) {
    const int h = idx / a.vw, d = idx % a.vw;
    a.out[r * a.out_row + std::size_t(head0 + h) * a.out_head + d] = num::div(run_acc[idx], run_l[h]);
  }
  if (t < count) {
    a.stats[(std::size_t(r) * a.n_heads + head0 + t) * 2] = run_m[t];
    a.stats[(std::size_t(r) * a.n_heads + head0 + t) * 2 + 1] = run_l[t];
  }
}

// Thread per (row, query head, key i): the probability the row's attention weighted key
// i by, attn_prob of its capped score and the row's final stats (the twin's
// LayerTaps::probs and its eviction scorers' input), into probs[(r * n_heads + h) *
// width + (by_position ? its position : i)]. `max_keys`: the most keys a row has.
template <FloatFormat K>
__global__ void attn_indexed_probs_kernel(IndexedArgs a, int rows, int max_keys, float* probs, int width,
                                          bool by_position) {
  const long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (idx >= (long long)rows * a.n_heads * max_keys) return;
  const int i = int(idx % max_keys), h = int(idx / max_keys % a.n_heads), r = int(idx / max_keys / a.n_heads);
  const IndexedKeys keys = a.rows[r];
  const int g = h / a.group;
  if (i >= indexed_count(keys, g)) return;
  const float* q = a.q + r * a.q_row + std::size_t(h) * a.q_head;
  const float score = num::capped_score(num::attn_score<K>(q, indexed_key<K>(keys, g, i), a.kw, a.scale), a.softcap);
  const float* st = a.stats + (std::size_t(r) * a.n_heads + h) * 2;
  probs[(std::size_t(r) * a.n_heads + h) * width + (by_position ? indexed_pos(keys, g, i) : i)] =
      num::attn_prob(score, {st[0], st[1]});
}

}  // namespace kvfid::engine::kernels
