#pragma once
// The engine's kernels. Each one computes its outputs with the cuda/common functions
// in the order those headers define, which the twin (cuda/twin) follows on the CPU.
#include <cuda_runtime.h>

#include "cuda/common/attention_math.h"
#include "cuda/common/kv_layout.h"
#include "cuda/common/log_softmax.h"
#include "cuda/common/rope.h"
#include "cuda/common/row_dot.h"

namespace kvfid::kernels {

using num::Fmt;
using num::Storage;

inline constexpr int kMatvecWarps = 8;           // output rows per block, one warp each
inline constexpr int kTokTile = 8;               // tokens a warp applies a weight row to
inline constexpr int kAttnThreads = num::kSplit; // one thread per key of a split
inline constexpr int kHeadChunk = 8;             // query heads scored per pass over a key

// Where a step row's token lives: its sequence's cache and position.
struct RowInfo {
  void* cache;  // the sequence's KvLayout buffer
  int capacity;
  int pos;
};

template <Fmt W>
__device__ __forceinline__ void load8(const typename Storage<W>::T* p, float* out) {
  if constexpr (W == Fmt::f32) {
    const float4 a = reinterpret_cast<const float4*>(p)[0];
    const float4 b = reinterpret_cast<const float4*>(p)[1];
    out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
    out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
  } else {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const unsigned int words[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = Storage<W>::load(std::uint16_t(words[i] & 0xFFFFu));
      out[2 * i + 1] = Storage<W>::load(std::uint16_t(words[i] >> 16));
    }
  }
}

template <Fmt W>
__global__ void embed_kernel(const typename Storage<W>::T* emb, const int* tokens, int dim, float* x) {
  const int r = blockIdx.x;
  const auto* row = emb + std::size_t(tokens[r]) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) x[std::size_t(r) * dim + i] = Storage<W>::load(row[i]);
}

// One warp per row: the sum of squares in row_dot order, then y = (x * inv) * w.
__global__ void rmsnorm_kernel(const float* x, const float* w, float eps, int dim, int rows, float* y) {
  const int r = blockIdx.x * (blockDim.x / num::kWarp) + threadIdx.x / num::kWarp;
  const int lane = threadIdx.x % num::kWarp;
  if (r >= rows) return;  // uniform over the warp
  const float* xr = x + std::size_t(r) * dim;
  const float ss = num::butterfly_device<num::Add>(num::row_dot_lane<Fmt::f32>(xr, xr, dim, lane));
  const float inv = num::rms_inverse(ss, dim, eps);
  for (int i = lane; i < dim; i += num::kWarp) y[std::size_t(r) * dim + i] = num::rms_apply(xr[i], inv, w[i]);
}

// y[t, o] (=|+=) W[o, :] . x[t, :] (+ bias[o]). One warp per output row o, applied to
// up to kTokTile tokens so the weights are read once per tile. Each (t, o) follows
// row_dot_lane per lane and the butterfly; `vec` (cols a multiple of 8) only changes
// how the same elements are loaded, not the order they are added in.
template <Fmt W>
__global__ void __launch_bounds__(kMatvecWarps * num::kWarp)
    matvec_kernel(const typename Storage<W>::T* w, const float* x, const float* bias, float* y, int n, int rows,
                  int cols, bool accumulate, bool vec) {
  const int lane = threadIdx.x % num::kWarp;
  const int o = blockIdx.x * kMatvecWarps + threadIdx.x / num::kWarp;
  const int t0 = blockIdx.y * kTokTile;
  if (o >= rows) return;  // uniform over the warp
  const int nt = min(kTokTile, n - t0);
  float acc[kTokTile];
#pragma unroll
  for (int t = 0; t < kTokTile; ++t) acc[t] = 0.0f;
  const auto* wr = w + std::size_t(o) * cols;
  const float* xb = x + std::size_t(t0) * cols;
  if (vec) {
    for (int base = lane * num::kVec; base < cols; base += num::kRowStep) {
      float wv[num::kVec];
      load8<W>(wr + base, wv);
#pragma unroll
      for (int t = 0; t < kTokTile; ++t)
        if (t < nt) {
          float xv[num::kVec];
          load8<Fmt::f32>(xb + std::size_t(t) * cols + base, xv);
#pragma unroll
          for (int e = 0; e < num::kVec; ++e) acc[t] = num::fma(wv[e], xv[e], acc[t]);
        }
    }
  } else {
    for (int base = lane * num::kVec; base < cols; base += num::kRowStep) {
      const int end = min(base + num::kVec, cols);
      for (int k = base; k < end; ++k) {
        const float wk = Storage<W>::load(wr[k]);
#pragma unroll
        for (int t = 0; t < kTokTile; ++t)
          if (t < nt) acc[t] = num::fma(wk, xb[std::size_t(t) * cols + k], acc[t]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kTokTile; ++t)
    if (t < nt) {
      float d = num::butterfly_device<num::Add>(acc[t]);
      if (lane == 0) {
        if (bias) d = d + bias[o];
        float* out = y + std::size_t(t0 + t) * rows + o;
        *out = accumulate ? *out + d : d;
      }
    }
}

__global__ void swiglu_kernel(float* h1, const float* h3, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    h1[i] = num::silu(h1[i]) * h3[i];
}

struct RopeArgs {
  const float* cos;  // [positions, pairs]
  const float* sin;
  int pairs;
  bool interleaved;
};

// One block per row: RoPE on q and k, then K and V stored into the row's cache at its
// position; k and v are overwritten with the cache's decoded values (what attention
// reads, and what the taps report).
template <Fmt K>
__global__ void rope_store_kernel(float* q, float* k, float* v, const RowInfo* rows, RopeArgs rope,
                                  num::KvLayout base, int layer, int n_heads) {
  using KT = typename Storage<K>::T;
  const int r = blockIdx.x;
  const RowInfo row = rows[r];
  const int hd = base.head_dim, qd = n_heads * hd, kvd = base.n_kv_heads * hd;
  const float* c = rope.cos + std::size_t(row.pos) * rope.pairs;
  const float* s = rope.sin + std::size_t(row.pos) * rope.pairs;
  for (int idx = threadIdx.x; idx < (n_heads + base.n_kv_heads) * rope.pairs; idx += blockDim.x) {
    const int h = idx / rope.pairs, i = idx % rope.pairs;
    float* head = h < n_heads ? q + std::size_t(r) * qd + h * hd : k + std::size_t(r) * kvd + (h - n_heads) * hd;
    int a, b;
    num::rope_dims(rope.interleaved, hd, i, a, b);
    num::rope_pair(head[a], head[b], c[i], s[i]);
  }
  __syncthreads();
  num::KvLayout lay = base;
  lay.capacity = row.capacity;
  KT* kc = static_cast<KT*>(row.cache) + lay.k_offset(layer);
  KT* vc = static_cast<KT*>(row.cache) + lay.v_offset(layer);
  for (int idx = threadIdx.x; idx < kvd; idx += blockDim.x) {
    const int h = idx / hd, d = idx % hd;
    const std::size_t at = lay.row(h, row.pos) + d;
    kc[at] = Storage<K>::store(k[std::size_t(r) * kvd + idx]);
    vc[at] = Storage<K>::store(v[std::size_t(r) * kvd + idx]);
    k[std::size_t(r) * kvd + idx] = Storage<K>::load(kc[at]);
    v[std::size_t(r) * kvd + idx] = Storage<K>::load(vc[at]);
  }
}

// Shared memory of one attention block, for `group` query heads.
struct AttnShared {
  float* q;    // [group, head_dim]
  float* p;    // [group, kSplit] scores, then probabilities
  float* red;  // [group, kSplitWarps] per-warp maxima, then sums
  float* m;    // [group] split maximum
  float* l;    // [group] split sum

  __host__ __device__ static std::size_t floats(int group, int hd) { return std::size_t(group) * (hd + num::kSplit + num::kSplitWarps + 2); }
  __device__ static AttnShared carve(float* base, int group, int hd) {
    AttnShared s;
    s.q = base;
    s.p = s.q + group * hd;
    s.red = s.p + group * num::kSplit;
    s.m = s.red + group * num::kSplitWarps;
    s.l = s.m + group;
    return s;
  }
};

// One split (keys [j0, j1)) for the `group` query heads sharing KV head kvh, by a block
// of kSplit threads, thread t owning key j0 + t. The order is attention_math.h's.
// emit(h, d, acc) receives each split value sum; sh.m and sh.l hold m_s and l_s.
template <Fmt K, class Emit>
__device__ void attn_split_block(const AttnShared& sh, const typename Storage<K>::T* kc,
                                 const typename Storage<K>::T* vc, const num::KvLayout& lay, int kvh, int j0, int j1,
                                 int group, float scale, Emit emit) {
  const int hd = lay.head_dim;
  const int t = threadIdx.x, warp = t / num::kWarp, lane = t % num::kWarp;
  const int j = j0 + t;
  const bool valid = j < j1;
  for (int h0 = 0; h0 < group; h0 += kHeadChunk) {
    float s[kHeadChunk];
#pragma unroll
    for (int hh = 0; hh < kHeadChunk; ++hh) s[hh] = 0.0f;
    if (valid) {
      const auto* kr = kc + lay.row(kvh, j);
      for (int d = 0; d < hd; ++d) {
        const float kd = Storage<K>::load(kr[d]);
#pragma unroll
        for (int hh = 0; hh < kHeadChunk; ++hh)
          if (h0 + hh < group) s[hh] = num::fma(sh.q[(h0 + hh) * hd + d], kd, s[hh]);
      }
    }
#pragma unroll
    for (int hh = 0; hh < kHeadChunk; ++hh)
      if (h0 + hh < group) sh.p[(h0 + hh) * num::kSplit + t] = valid ? s[hh] * scale : -num::infinity();
  }
  __syncthreads();
  for (int h = 0; h < group; ++h) {
    const float wm = num::butterfly_device<num::Max>(sh.p[h * num::kSplit + t]);
    if (lane == 0) sh.red[h * num::kSplitWarps + warp] = wm;
  }
  __syncthreads();
  if (t < group) {
    float m = sh.red[t * num::kSplitWarps];
    for (int w = 1; w < num::kSplitWarps; ++w) m = num::max(m, sh.red[t * num::kSplitWarps + w]);
    sh.m[t] = m;
  }
  __syncthreads();
  for (int h = 0; h < group; ++h) {
    const float p = valid ? num::exp_portable(sh.p[h * num::kSplit + t] - sh.m[h]) : 0.0f;
    sh.p[h * num::kSplit + t] = p;
    const float ws = num::butterfly_device<num::Add>(p);
    if (lane == 0) sh.red[h * num::kSplitWarps + warp] = ws;
  }
  __syncthreads();
  if (t < group) {
    float l = sh.red[t * num::kSplitWarps];
    for (int w = 1; w < num::kSplitWarps; ++w) l = l + sh.red[t * num::kSplitWarps + w];
    sh.l[t] = l;
  }
  for (int idx = t; idx < group * hd; idx += blockDim.x) {
    const int h = idx / hd, d = idx % hd;
    float a = 0.0f;
    for (int jj = j0; jj < j1; ++jj) a = num::fma(sh.p[h * num::kSplit + (jj - j0)], Storage<K>::load(vc[lay.row(kvh, jj) + d]), a);
    emit(h, d, a);
  }
  __syncthreads();
}

struct AttnArgs {
  const float* q;        // [rows, n_heads, head_dim]
  const RowInfo* rows;   // [rows]
  num::KvLayout base;    // capacity taken per row
  int layer;
  int n_heads;
  int group;
  float scale;
};

__device__ inline void load_q(const AttnArgs& a, const AttnShared& sh, int r, int kvh) {
  const int hd = a.base.head_dim;
  const float* src = a.q + (std::size_t(r) * a.n_heads + std::size_t(kvh) * a.group) * hd;
  for (int i = threadIdx.x; i < a.group * hd; i += blockDim.x) sh.q[i] = src[i];
  __syncthreads();
}

// Flash-decoding: block (row, kv head, split) writes that split's (m, l, acc) to
// partial [rows, n_heads, max_splits, 2 + head_dim].
template <Fmt K>
__global__ void __launch_bounds__(kAttnThreads) attn_decode_kernel(AttnArgs a, int max_splits, float* partial) {
  using KT = typename Storage<K>::T;
  extern __shared__ float smem[];
  const int r = blockIdx.x, kvh = blockIdx.y, sp = blockIdx.z;
  const RowInfo row = a.rows[r];
  if (sp >= num::split_count(row.pos + 1)) return;
  const int hd = a.base.head_dim;
  num::KvLayout lay = a.base;
  lay.capacity = row.capacity;
  const AttnShared sh = AttnShared::carve(smem, a.group, hd);
  load_q(a, sh, r, kvh);
  const std::size_t stride = 2 + hd;
  float* out = partial + ((std::size_t(r) * a.n_heads + std::size_t(kvh) * a.group) * max_splits + sp) * stride;
  const int j0 = sp * num::kSplit, j1 = min(j0 + num::kSplit, row.pos + 1);
  attn_split_block<K>(sh, static_cast<const KT*>(row.cache) + lay.k_offset(a.layer),
                      static_cast<const KT*>(row.cache) + lay.v_offset(a.layer), lay, kvh, j0, j1, a.group, a.scale,
                      [&](int h, int d, float acc) { out[std::size_t(h) * max_splits * stride + 2 + d] = acc; });
  if (threadIdx.x < a.group) {
    out[std::size_t(threadIdx.x) * max_splits * stride] = sh.m[threadIdx.x];
    out[std::size_t(threadIdx.x) * max_splits * stride + 1] = sh.l[threadIdx.x];
  }
}

// The combine: block (row, query head) folds the splits in increasing order.
__global__ void attn_combine_kernel(const float* partial, const RowInfo* rows, int n_heads, int hd, int max_splits,
                                    float* att, float* stats) {
  const int r = blockIdx.x, h = blockIdx.y;
  const int splits = num::split_count(rows[r].pos + 1);
  const std::size_t stride = 2 + hd;
  const float* p = partial + (std::size_t(r) * n_heads + h) * max_splits * stride;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    num::SoftmaxStats run{p[0], p[1]};
    float acc = p[2 + d];
    for (int sp = 1; sp < splits; ++sp) {
      const float* ps = p + sp * stride;
      const num::FoldFactors f = num::fold_factors(run.m, ps[0]);
      acc = num::fold_value(acc, ps[2 + d], f);
      run = {f.m, num::fold_value(run.l, ps[1], f)};
    }
    att[(std::size_t(r) * n_heads + h) * hd + d] = num::div(acc, run.l);
    if (d == 0) {
      stats[(std::size_t(r) * n_heads + h) * 2] = run.m;
      stats[(std::size_t(r) * n_heads + h) * 2 + 1] = run.l;
    }
  }
}

// Prefill: block (row, kv head) walks the splits in order, folding each into its
// running state as it goes (online softmax); the same split values and the same fold
// as decode + combine.
template <Fmt K>
__global__ void __launch_bounds__(kAttnThreads) attn_prefill_kernel(AttnArgs a, float* att, float* stats) {
  using KT = typename Storage<K>::T;
  extern __shared__ float smem[];
  const int r = blockIdx.x, kvh = blockIdx.y;
  const RowInfo row = a.rows[r];
  const int hd = a.base.head_dim, g = a.group;
  num::KvLayout lay = a.base;
  lay.capacity = row.capacity;
  const AttnShared sh = AttnShared::carve(smem, g, hd);
  float* run_acc = smem + AttnShared::floats(g, hd);  // [group, head_dim]
  float* run_m = run_acc + g * hd;                     // [group]
  float* run_l = run_m + g;                            // [group]
  load_q(a, sh, r, kvh);
  const KT* kc = static_cast<const KT*>(row.cache) + lay.k_offset(a.layer);
  const KT* vc = static_cast<const KT*>(row.cache) + lay.v_offset(a.layer);
  const int splits = num::split_count(row.pos + 1);
  for (int sp = 0; sp < splits; ++sp) {
    const int j0 = sp * num::kSplit, j1 = min(j0 + num::kSplit, row.pos + 1);
    attn_split_block<K>(sh, kc, vc, lay, kvh, j0, j1, g, a.scale, [&](int h, int d, float acc) {
      if (sp == 0) {
        run_acc[h * hd + d] = acc;
      } else {
        const num::FoldFactors f = num::fold_factors(run_m[h], sh.m[h]);
        run_acc[h * hd + d] = num::fold_value(run_acc[h * hd + d], acc, f);
      }
    });
    if (threadIdx.x < g) {
      const int h = threadIdx.x;
      if (sp == 0) {
        run_m[h] = sh.m[h];
        run_l[h] = sh.l[h];
      } else {
        const num::FoldFactors f = num::fold_factors(run_m[h], sh.m[h]);
        run_m[h] = f.m;
        run_l[h] = num::fold_value(run_l[h], sh.l[h], f);
      }
    }
    __syncthreads();
  }
  const std::size_t head0 = std::size_t(r) * a.n_heads + std::size_t(kvh) * g;
  for (int idx = threadIdx.x; idx < g * hd; idx += blockDim.x)
    att[head0 * hd + idx] = num::div(run_acc[idx], run_l[idx / hd]);
  if (threadIdx.x < g) {
    stats[(head0 + threadIdx.x) * 2] = run_m[threadIdx.x];
    stats[(head0 + threadIdx.x) * 2 + 1] = run_l[threadIdx.x];
  }
}

// One block per row: logprobs[r, :] = log-softmax of logits[r, :] in log_softmax.h's order.
__global__ void __launch_bounds__(num::kLogSoftmaxThreads)
    log_softmax_kernel(const float* logits, int vocab, float* logprobs) {
  __shared__ float warps[num::kLogSoftmaxWarps];  // per-warp maxima, then sums
  __shared__ float row_max, log_sum;
  const int t = threadIdx.x, warp = t / num::kWarp, lane = t % num::kWarp;
  const float* x = logits + std::size_t(blockIdx.x) * vocab;
  const float wm = num::butterfly_device<num::Max>(num::log_softmax_thread_max(x, vocab, t));
  if (lane == 0) warps[warp] = wm;
  __syncthreads();
  if (t == 0) row_max = num::fold_warps<num::Max>(warps);
  __syncthreads();
  const float m = row_max;
  const float ws = num::butterfly_device<num::Add>(num::log_softmax_thread_sum(x, vocab, t, m));
  if (lane == 0) warps[warp] = ws;
  __syncthreads();
  if (t == 0) log_sum = num::log_portable(num::fold_warps<num::Add>(warps));
  __syncthreads();
  float* out = logprobs + std::size_t(blockIdx.x) * vocab;
  for (int k = t; k < vocab; k += num::kLogSoftmaxThreads) out[k] = num::log_softmax_value(x[k], m, log_sum);
}

}  // namespace kvfid::kernels
