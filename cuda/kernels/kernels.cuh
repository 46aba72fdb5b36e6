#pragma once
// The engine's kernels. Each one computes its outputs with the cuda/common functions
// in the order those headers define, which the twin (cuda/twin) follows on the CPU.
#include <cuda_runtime.h>

#include "cuda/common/attention_math.h"
#include "cuda/common/kv_encode.h"
#include "cuda/common/kv_layout.h"
#include "cuda/common/log_softmax.h"
#include "cuda/common/rope.h"
#include "cuda/common/row_dot.h"
#include "cuda/kernels/kernel_args.cuh"
#include "reference/formats/quant/kv_rotation.h"

namespace kvfid::engine::kernels {

using ref::FloatFormat;
using num::Storage;

inline constexpr int kMatvecWarps = 8;           // output rows per block, one warp each
inline constexpr int kTokTile = 8;               // tokens a warp applies a weight row to
inline constexpr int kLoadsAhead = 4;            // decode: 16-byte weight loads a lane issues before using them
inline constexpr int kAttnThreads = num::kSplit; // one thread per key of the largest split
inline constexpr int kHeadChunk = 8;             // query heads scored per pass over a key
inline constexpr int kOutTile = 4;               // value outputs a thread accumulates together
inline constexpr int kKeyTile = 4;               // keys whose values a thread loads before using them
// Attention blocks resident per SM the register allocation must allow (at most 64
// registers a thread): a 32K-token decode step has 4 KV heads x 128 splits = 512
// blocks, about 4 per SM of an H100.
inline constexpr int kAttnBlocksPerSm = 4;

// kVec consecutive elements as stored: one 16-byte load for FP16/BF16, two for FP32
// (p aligned to 16 bytes). Loading and decoding are separate so that a lane can issue
// several loads before it waits for the first.
template <FloatFormat W>
struct Raw8 {
  uint4 u[W == FloatFormat::f32 ? 2 : 1];
};

template <FloatFormat W>
__device__ __forceinline__ Raw8<W> load_raw8(const typename Storage<W>::T* p) {
  Raw8<W> r;
#pragma unroll
  for (int i = 0; i < (W == FloatFormat::f32 ? 2 : 1); ++i) r.u[i] = reinterpret_cast<const uint4*>(p)[i];
  return r;
}

template <FloatFormat W>
__device__ __forceinline__ void decode8(const Raw8<W>& r, float* out) {
  if constexpr (W == FloatFormat::f32) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      out[4 * i] = __uint_as_float(r.u[i].x), out[4 * i + 1] = __uint_as_float(r.u[i].y);
      out[4 * i + 2] = __uint_as_float(r.u[i].z), out[4 * i + 3] = __uint_as_float(r.u[i].w);
    }
  } else {
    const unsigned int words[4] = {r.u[0].x, r.u[0].y, r.u[0].z, r.u[0].w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = Storage<W>::load(std::uint16_t(words[i] & 0xFFFFu));
      out[2 * i + 1] = Storage<W>::load(std::uint16_t(words[i] >> 16));
    }
  }
}

template <FloatFormat W>
__device__ __forceinline__ void load8(const typename Storage<W>::T* p, float* out) {
  decode8<W>(load_raw8<W>(p), out);
}

template <FloatFormat W>
// The token's row times `scale` (Gemma's embed_scale; 1 changes no bit).
__global__ void embed_kernel(const typename Storage<W>::T* emb, const int* tokens, int dim, float scale, float* x) {
  const int r = blockIdx.x;
  const auto* row = emb + std::size_t(tokens[r]) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) x[std::size_t(r) * dim + i] = Storage<W>::load(row[i]) * scale;
}

// One warp per row: the sum of squares in row_dot order, then y = (x * inv) * w.
__global__ void rmsnorm_kernel(const float* x, const float* w, float eps, int dim, int rows, float* y) {
  const int r = blockIdx.x * (blockDim.x / num::kWarp) + threadIdx.x / num::kWarp;
  const int lane = threadIdx.x % num::kWarp;
  if (r >= rows) return;  // uniform over the warp
  const float* xr = x + std::size_t(r) * dim;
  const float ss = num::butterfly_device<num::Add>(num::row_dot_lane<FloatFormat::f32>(xr, xr, dim, lane));
  const float inv = num::rms_inverse(ss, dim, eps);
  for (int i = lane; i < dim; i += num::kWarp) y[std::size_t(r) * dim + i] = num::rms_apply(xr[i], inv, w[i]);
}

// acc[t] += w[base..base+8) . x[t, base..base+8) for the tile's tokens, fma in
// increasing element order: one step of row_dot_lane.
template <FloatFormat W, int kTokens>
__device__ __forceinline__ void matvec_step(const Raw8<W>& raw, const float* xb, int cols, int base, int nt,
                                            float* acc) {
  float wv[num::kVec];
  decode8<W>(raw, wv);
#pragma unroll
  for (int t = 0; t < kTokens; ++t)
    if (t < nt) {
      float xv[num::kVec];
      load8<FloatFormat::f32>(xb + std::size_t(t) * cols + base, xv);
#pragma unroll
      for (int e = 0; e < num::kVec; ++e) acc[t] = num::fma(wv[e], xv[e], acc[t]);
    }
}

// y[t, o] (=|+=) W[o, :] . x[t, :] (+ bias[o]). One warp per output row o, applied to
// up to kTokens tokens so the weights are read once per tile (kTokens = 1 for decode,
// which needs fewer registers). Each (t, o) follows row_dot_lane per lane and the
// butterfly; `vec` (cols a multiple of 8) only changes how the same elements are
// loaded -- 16 bytes at a time; for decode, kLoadsAhead steps' loads issued before the
// first is used (a tile of 8 tokens has 64 fmas per load to hide it, and the registers
// are better spent on occupancy) -- not the order they are added in.
template <FloatFormat W, int kTokens>
__global__ void __launch_bounds__(kMatvecWarps * num::kWarp)
    matvec_kernel(const typename Storage<W>::T* w, const float* x, const float* bias, float* y, int n, int rows,
                  int cols, bool accumulate, bool vec) {
  const int lane = threadIdx.x % num::kWarp;
  const int o = blockIdx.x * kMatvecWarps + threadIdx.x / num::kWarp;
  const int t0 = blockIdx.y * kTokens;
  if (o >= rows) return;  // uniform over the warp
  const int nt = min(kTokens, n - t0);
  float acc[kTokens];
#pragma unroll
  for (int t = 0; t < kTokens; ++t) acc[t] = 0.0f;
  const auto* wr = w + std::size_t(o) * cols;
  const float* xb = x + std::size_t(t0) * cols;
  if (vec) {
    constexpr int kAhead = kTokens == 1 ? kLoadsAhead : 1;
    int base = lane * num::kVec;
    for (; base + (kAhead - 1) * num::kRowStep < cols; base += kAhead * num::kRowStep) {
      Raw8<W> raw[kAhead];
#pragma unroll
      for (int a = 0; a < kAhead; ++a) raw[a] = load_raw8<W>(wr + base + a * num::kRowStep);
#pragma unroll
      for (int a = 0; a < kAhead; ++a) matvec_step<W, kTokens>(raw[a], xb, cols, base + a * num::kRowStep, nt, acc);
    }
    for (; base < cols; base += num::kRowStep) matvec_step<W, kTokens>(load_raw8<W>(wr + base), xb, cols, base, nt, acc);
  } else {
    for (int base = lane * num::kVec; base < cols; base += num::kRowStep) {
      const int end = min(base + num::kVec, cols);
      for (int k = base; k < end; ++k) {
        const float wk = Storage<W>::load(wr[k]);
#pragma unroll
        for (int t = 0; t < kTokens; ++t)
          if (t < nt) acc[t] = num::fma(wk, xb[std::size_t(t) * cols + k], acc[t]);
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kTokens; ++t)
    if (t < nt) {
      float d = num::butterfly_device<num::Add>(acc[t]);
      if (lane == 0) {
        if (bias) d = d + bias[o];
        float* out = y + std::size_t(t0 + t) * rows + o;
        *out = accumulate ? *out + d : d;
      }
    }
}

// The FFN gate: h1 <- act(h1) * h3, act silu (SwiGLU) or gelu_tanh (GeGLU).
__global__ void gated_kernel(float* h1, const float* h3, std::size_t n, bool gelu) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    h1[i] = (gelu ? num::gelu_tanh(h1[i]) : num::silu(h1[i])) * h3[i];
}

// x <- x + y (a residual add after Gemma 2's post-norm), as the twin's loop.
__global__ void add_kernel(float* x, const float* y, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    x[i] = x[i] + y[i];
}

// z <- cap * tanh(z / cap), Gemma 2's final logit soft-cap.
__global__ void soft_cap_kernel(float* z, std::size_t n, float cap) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    z[i] = num::soft_cap(z[i], cap);
}

struct RopeArgs {
  const float* cos;  // [positions, pairs]
  const float* sin;
  int pairs;
  bool interleaved;
};

// RoPE on row r's q and k by the block's threads (each pair rotated by one thread).
__device__ __forceinline__ void rope_row(float* q, float* k, int r, int pos, const RopeArgs& rope,
                                         const num::KvLayout& base, int n_heads) {
  const int hd = base.head_dim, qd = n_heads * hd, kvd = base.n_kv_heads * hd;
  const float* c = rope.cos + std::size_t(pos) * rope.pairs;
  const float* s = rope.sin + std::size_t(pos) * rope.pairs;
  for (int idx = threadIdx.x; idx < (n_heads + base.n_kv_heads) * rope.pairs; idx += blockDim.x) {
    const int h = idx / rope.pairs, i = idx % rope.pairs;
    float* head = h < n_heads ? q + std::size_t(r) * qd + h * hd : k + std::size_t(r) * kvd + (h - n_heads) * hd;
    int a, b;
    num::rope_dims(rope.interleaved, hd, i, a, b);
    num::rope_pair(head[a], head[b], c[i], s[i]);
  }
}

// One block per row: RoPE on q and k (unless `rope_done`: a rotated policy has run
// rope_kernel and rotate_heads_kernel first), then K and V stored into the row's cache at
// its position; k and v are overwritten with the cache's decoded values (what attention
// reads, and what the taps report).
template <FloatFormat K>
__global__ void rope_store_kernel(float* q, float* k, float* v, const RowInfo* rows, RopeArgs rope,
                                  num::KvLayout base, int layer, int n_heads, bool rope_done) {
  using KT = typename Storage<K>::T;
  const int r = blockIdx.x;
  const RowInfo row = rows[r];
  const int hd = base.head_dim, kvd = base.n_kv_heads * hd;
  if (!rope_done) rope_row(q, k, r, row.pos, rope, base, n_heads);
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

// The tiered path's stores (cuda/engine/kv_plan.h), as separate kernels because a KIVI
// key group is encoded from raw keys that other rows of the same step store: each
// launch sees every earlier one complete. The twin (store_tiered) runs the same
// cuda/common/kv_encode.h functions on the same FP32 inputs, so codes, cold values and
// taps are the same bits.

// One block per row: RoPE on q and k (the fast path does it in rope_store_kernel).
__global__ void rope_kernel(float* q, float* k, const RowInfo* rows, RopeArgs rope, num::KvLayout base, int n_heads) {
  rope_row(q, k, blockIdx.x, rows[blockIdx.x].pos, rope, base, n_heads);
}

// Thread i rotates (or with `inverse`, rotates back) head vector i of x ([vectors,
// head_dim]) in place: quant::rotate_head / unrotate_head, the twin's functions, in one
// thread each, so the order of operations is theirs.
__global__ void rotate_heads_kernel(float* x, int vectors, quant::RotationView rot, bool inverse) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= vectors) return;
  float tmp[quant::kMaxRotationDim];  // orthogonal only
  float* head = x + std::size_t(i) * rot.dim;
  if (inverse) {
    quant::unrotate_head(rot, head, tmp);
  } else {
    quant::rotate_head(rot, head, tmp);
  }
}

// One block per row: the hot forms of K and V (under a hot window or KIVI) and the raw
// FP32 keys (under KIVI) at the row's position.
__global__ void store_hot_raw_kernel(const float* k, const float* v, const RowInfo* rows, num::KvLayout base, int layer,
                                     bool hot, bool kivi) {
  const int r = blockIdx.x;
  const RowInfo row = rows[r];
  num::KvLayout lay = base;
  lay.capacity = row.capacity;
  const int hd = base.head_dim, kvd = base.n_kv_heads * hd;
  for (int idx = threadIdx.x; idx < kvd; idx += blockDim.x) {
    const std::size_t at = lay.row(idx / hd, row.pos) + idx % hd;
    if (hot) {
      row.hot[lay.k_offset(layer) + at] = num::hot_value(k[std::size_t(r) * kvd + idx]);
      row.hot[lay.v_offset(layer) + at] = num::hot_value(v[std::size_t(r) * kvd + idx]);
    }
    if (kivi) row.raw[lay.plane() * layer + at] = k[std::size_t(r) * kvd + idx];
  }
}

// Block (row, chunk of blocks): thread b encodes block b of the row's K or V
// (`values`) with codec C (one thread per block, encode_row_block).
template <class C>
__global__ void encode_rows_kernel(const float* x, const RowInfo* rows, num::KvLayout base, int layer, bool values,
                                   const float* scales) {
  const int r = blockIdx.x;
  const int kvd = base.n_kv_heads * base.head_dim;
  const int b = blockIdx.y * blockDim.x + threadIdx.x;
  if (b >= quant::row_block_count(kvd, C::kBlock)) return;
  const RowInfo row = rows[r];
  num::KvLayout lay = base;
  lay.capacity = row.capacity;
  float* cold = static_cast<float*>(row.cache) + (values ? lay.v_offset(layer) : lay.k_offset(layer));
  num::encode_row_block<C>(x + std::size_t(r) * kvd, b, row.pos, lay, scales, row.codes[2 * layer + values], cold);
}

// KIVI: block per row, thread per key channel: a row whose token completes a group of
// C::kBlock tokens encodes that group of every channel (encode_key_group) from the raw
// keys, which store_hot_raw_kernel has written for the whole step.
template <class C>
__global__ void encode_key_groups_kernel(const RowInfo* rows, num::KvLayout base, int layer, const float* scales) {
  const RowInfo row = rows[blockIdx.x];
  if ((row.pos + 1) % C::kBlock != 0) return;  // uniform over the block
  num::KvLayout lay = base;
  lay.capacity = row.capacity;
  const int kvd = base.n_kv_heads * base.head_dim;
  for (int ch = threadIdx.x; ch < kvd; ch += blockDim.x)
    num::encode_key_group<C>(row.raw + lay.plane() * layer, ch, row.pos / C::kBlock, lay, scales,
                             row.codes[2 * layer], static_cast<float*>(row.cache) + lay.k_offset(layer));
}

// One block per row: k and v become what the row's own query reads for its own key and
// value (the taps; attention reads the planes).
__global__ void own_read_kernel(float* k, float* v, const RowInfo* rows, num::KvLayout base, int layer, int hot_window,
                                int k_group) {
  const int r = blockIdx.x;
  const RowInfo row = rows[r];
  num::KvLayout lay = base;
  lay.capacity = row.capacity;
  const int hd = base.head_dim, kvd = base.n_kv_heads * hd;
  const float* cold = static_cast<const float*>(row.cache);
  // Without a hot plane cold_end is past the own key: the hot pointer is never read.
  const float* hot = row.hot ? row.hot : cold;
  const float* k_read = num::plane_read(cold + lay.k_offset(layer), hot + lay.k_offset(layer), row.pos, row.pos,
                                        hot_window, k_group);
  const float* v_read =
      num::plane_read(cold + lay.v_offset(layer), hot + lay.v_offset(layer), row.pos, row.pos, hot_window, 0);
  for (int idx = threadIdx.x; idx < kvd; idx += blockDim.x) {
    const std::size_t at = lay.row(idx / hd, row.pos) + idx % hd;
    k[std::size_t(r) * kvd + idx] = k_read[at];
    v[std::size_t(r) * kvd + idx] = v_read[at];
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

// What the tiered path's attention reads besides the cold planes (kc, vc): the hot
// planes of the layer and the row's cold_end for keys and for values (kv_policy.h).
// The fast path passes an unused one.
struct TieredRead {
  const float* k_hot;
  const float* v_hot;
  int k_end;
  int v_end;
};

// The plane key j is read from: the fast path's only one, or by cold_end.
template <bool kTiered, class T>
__device__ __forceinline__ const T* key_plane(const T* cold, const TieredRead& t, int j) {
  if constexpr (kTiered) return j < t.k_end ? cold : t.k_hot;  // T is float on the tiered path
  else return cold;
}

// One split (keys [j0, j1), at most kSplit of them) for the `group` query heads sharing
// KV head kvh, by a block of kSplit threads, thread t owning key j0 + t for the scores
// (threads past j1 hold the identities: -inf scores, +0 probabilities). The order is
// attention_math.h's. The value sums: thread t owns outputs (h, d) number
// t, t + kSplit, ... (consecutive threads, consecutive d: coalesced value loads) and
// advances kOutTile of them together, key by key in increasing order, with kKeyTile
// keys' values loaded ahead -- each output still one fma chain over j from +0.
// emit(h, d, acc) receives each split value sum; sh.m and sh.l hold m_s and l_s.
// kTiered (K = f32): key and value j come from the cold plane before the row's
// cold_end and from the hot plane after it -- the same operands in the same order
// as the twin's TieredKv, and otherwise the fast path's code.
template <FloatFormat K, bool kTiered, class Emit>
__device__ void attn_split_block(const AttnShared& sh, const typename Storage<K>::T* kc,
                                 const typename Storage<K>::T* vc, const TieredRead& tiers, const num::KvLayout& lay,
                                 int kvh, int j0, int j1, int group, float scale, float cap, Emit emit) {
  const int hd = lay.head_dim;
  const int t = threadIdx.x, warp = t / num::kWarp, lane = t % num::kWarp;
  const int j = j0 + t;
  const bool valid = j < j1;
  for (int h0 = 0; h0 < group; h0 += kHeadChunk) {
    float s[kHeadChunk];
#pragma unroll
    for (int hh = 0; hh < kHeadChunk; ++hh) s[hh] = 0.0f;
    if (valid) {
      const auto* kr = key_plane<kTiered>(kc, tiers, j) + lay.row(kvh, j);
      if (hd % num::kVec == 0) {  // rows 16-byte aligned: the same elements, 8 per load
        for (int d0 = 0; d0 < hd; d0 += num::kVec) {
          float kd[num::kVec];
          load8<K>(kr + d0, kd);
#pragma unroll
          for (int e = 0; e < num::kVec; ++e)
#pragma unroll
            for (int hh = 0; hh < kHeadChunk; ++hh)
              if (h0 + hh < group) s[hh] = num::fma(sh.q[(h0 + hh) * hd + d0 + e], kd[e], s[hh]);
        }
      } else {
        for (int d = 0; d < hd; ++d) {
          const float kd = Storage<K>::load(kr[d]);
#pragma unroll
          for (int hh = 0; hh < kHeadChunk; ++hh)
            if (h0 + hh < group) s[hh] = num::fma(sh.q[(h0 + hh) * hd + d], kd, s[hh]);
        }
      }
    }
#pragma unroll
    for (int hh = 0; hh < kHeadChunk; ++hh)
      if (h0 + hh < group) sh.p[(h0 + hh) * num::kSplit + t] = valid ? num::capped_score(s[hh] * scale, cap) : -num::infinity();
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
  const int outputs = group * hd;
  const auto* v0 = vc + lay.row(kvh, j0);  // [keys, head_dim] of this split
  for (int first = t; first < outputs; first += kAttnThreads * kOutTile) {
    float acc[kOutTile];
    const float* prob[kOutTile];            // p of the output's head, indexed by key - j0
    const typename Storage<K>::T* col[kOutTile];  // v[.][d] of the output, indexed by (key - j0) * hd
    const typename Storage<K>::T* hot_col[kOutTile];  // the same in the hot plane (tiered only)
#pragma unroll
    for (int i = 0; i < kOutTile; ++i) {
      const int idx = min(first + i * kAttnThreads, outputs - 1);  // past the end: a harmless duplicate
      acc[i] = 0.0f;
      prob[i] = sh.p + (idx / hd) * num::kSplit;
      col[i] = v0 + idx % hd;
      if constexpr (kTiered) hot_col[i] = tiers.v_hot + lay.row(kvh, j0) + idx % hd;
    }
    (void)hot_col;
    for (int k0 = 0; k0 < j1 - j0; k0 += kKeyTile) {
      const int nk = min(kKeyTile, j1 - j0 - k0);
      float v[kKeyTile][kOutTile];
#pragma unroll
      for (int kk = 0; kk < kKeyTile; ++kk)
#pragma unroll
        for (int i = 0; i < kOutTile; ++i) {
          if constexpr (kTiered)
            v[kk][i] = kk < nk ? (j0 + k0 + kk < tiers.v_end ? col[i] : hot_col[i])[std::size_t(k0 + kk) * hd] : 0.0f;
          else
            v[kk][i] = kk < nk ? Storage<K>::load(col[i][std::size_t(k0 + kk) * hd]) : 0.0f;
        }
#pragma unroll
      for (int kk = 0; kk < kKeyTile; ++kk)
        if (kk < nk)
#pragma unroll
          for (int i = 0; i < kOutTile; ++i) acc[i] = num::fma(prob[i][k0 + kk], v[kk][i], acc[i]);
    }
#pragma unroll
    for (int i = 0; i < kOutTile; ++i) {
      const int idx = first + i * kAttnThreads;
      if (idx < outputs) emit(idx / hd, idx % hd, acc[i]);
    }
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
  int hot_window = 0;    // tiered path: the policy's hot window
  int k_group = 0;       // tiered path: cold_end's group for this layer's keys
  int split = num::kSplit;  // keys per split (cuda/engine/split_keys.h), at most kSplit
  int window = 0;           // this layer's sliding window (0: every key up to the row's position)
  float softcap = 0;        // Gemma 2's score soft-cap (0: none; num::capped_score)
};

// The tiered reads of row `row` in layer a.layer (unused on the fast path).
__device__ inline TieredRead tiered_read(const AttnArgs& a, const RowInfo& row, const num::KvLayout& lay) {
  const float* cold = static_cast<const float*>(row.cache);
  const float* hot = row.hot ? row.hot : cold;  // no hot plane: cold_end is past every key
  return {hot + lay.k_offset(a.layer), hot + lay.v_offset(a.layer), quant::cold_end(row.pos, a.hot_window, a.k_group),
          quant::cold_end(row.pos, a.hot_window, 0)};
}

// The q rows of query heads head0 .. head0 + count of step row r into shared memory.
__device__ inline void load_q(const AttnArgs& a, const AttnShared& sh, int r, int head0, int count) {
  const int hd = a.base.head_dim;
  const float* src = a.q + (std::size_t(r) * a.n_heads + head0) * hd;
  for (int i = threadIdx.x; i < count * hd; i += blockDim.x) sh.q[i] = src[i];
  __syncthreads();
}

// Flash-decoding: block (row, kv head x head block, split) writes that split's
// (m, l, acc) for up to heads_per_block of the KV head's query heads to
// partial [rows, n_heads, max_splits, 2 + head_dim]. A query head's values do not
// depend on which others share its block, so splitting a group over several blocks
// (more blocks in flight when the context is short) changes no bit.
template <FloatFormat K, bool kTiered>
__global__ void __launch_bounds__(kAttnThreads, kAttnBlocksPerSm)
    attn_decode_kernel(AttnArgs a, int max_splits, int heads_per_block, float* partial) {
  using KT = typename Storage<K>::T;
  extern __shared__ float smem[];
  const int head_blocks = (a.group + heads_per_block - 1) / heads_per_block;
  const int r = blockIdx.x, kvh = blockIdx.y / head_blocks, sp = blockIdx.z;
  const int first = (blockIdx.y % head_blocks) * heads_per_block;  // within the group
  const int count = min(heads_per_block, a.group - first);
  const RowInfo row = a.rows[r];
  const int key0 = num::first_key(a.window, row.pos);  // the row's keys: key0 .. pos
  if (sp >= num::split_count(row.pos + 1 - key0, a.split)) return;
  const int hd = a.base.head_dim;
  num::KvLayout lay = a.base;
  lay.capacity = row.capacity;
  const AttnShared sh = AttnShared::carve(smem, count, hd);
  const int head0 = kvh * a.group + first;
  load_q(a, sh, r, head0, count);
  const std::size_t stride = 2 + hd;
  float* out = partial + ((std::size_t(r) * a.n_heads + head0) * max_splits + sp) * stride;
  const int j0 = key0 + sp * a.split, j1 = min(j0 + a.split, row.pos + 1);
  attn_split_block<K, kTiered>(sh, static_cast<const KT*>(row.cache) + lay.k_offset(a.layer),
                               static_cast<const KT*>(row.cache) + lay.v_offset(a.layer),
                               kTiered ? tiered_read(a, row, lay) : TieredRead{}, lay, kvh, j0, j1, count, a.scale,
                               a.softcap, [&](int h, int d, float acc) { out[std::size_t(h) * max_splits * stride + 2 + d] = acc; });
  if (threadIdx.x < count) {
    out[std::size_t(threadIdx.x) * max_splits * stride] = sh.m[threadIdx.x];
    out[std::size_t(threadIdx.x) * max_splits * stride + 1] = sh.l[threadIdx.x];
  }
}

// The combine: block (row, query head) folds the splits in increasing order.
__global__ void attn_combine_kernel(const float* partial, const RowInfo* rows, int n_heads, int hd, int max_splits,
                                    int split, int window, float* att, float* stats) {
  const int r = blockIdx.x, h = blockIdx.y;
  const int splits = num::split_count(rows[r].pos + 1 - num::first_key(window, rows[r].pos), split);
  const std::size_t stride = 2 + hd;
  const float* p = partial + (std::size_t(r) * n_heads + h) * max_splits * stride;
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    num::SoftmaxStats run{p[0], p[1]};
    float acc = p[2 + d];
    for (int sp = 1; sp < splits; ++sp) {
      const float* ps = p + sp * stride;
      const num::FoldFactors f = num::fold_factors(run.m, ps[0]);
      acc = num::fold_value(acc, ps[2 + d], f);
      run = num::fold_stats(run, ps[1], f);
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
template <FloatFormat K, bool kTiered>
__global__ void __launch_bounds__(kAttnThreads, kAttnBlocksPerSm) attn_prefill_kernel(AttnArgs a, float* att, float* stats) {
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
  load_q(a, sh, r, kvh * g, g);
  const KT* kc = static_cast<const KT*>(row.cache) + lay.k_offset(a.layer);
  const KT* vc = static_cast<const KT*>(row.cache) + lay.v_offset(a.layer);
  const TieredRead tiers = kTiered ? tiered_read(a, row, lay) : TieredRead{};
  const int key0 = num::first_key(a.window, row.pos);  // the row's keys: key0 .. pos
  const int splits = num::split_count(row.pos + 1 - key0, a.split);
  for (int sp = 0; sp < splits; ++sp) {
    const int j0 = key0 + sp * a.split, j1 = min(j0 + a.split, row.pos + 1);
    attn_split_block<K, kTiered>(sh, kc, vc, tiers, lay, kvh, j0, j1, g, a.scale, a.softcap, [&](int h, int d, float acc) {
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

// Dynamic shared memory of log_softmax_kernel (the emulation of tests/cuda/kernels runs
// only kernels whose shared memory is dynamic).
inline constexpr int kLogSoftmaxShared = num::kLogSoftmaxWarps + 2;

// One block per row: logprobs[r, :] = log-softmax of logits[r, :] in log_softmax.h's order.
__global__ void __launch_bounds__(num::kLogSoftmaxThreads)
    log_softmax_kernel(const float* logits, int vocab, float* logprobs) {
  extern __shared__ float smem[];  // kLogSoftmaxShared floats
  float* warps = smem;              // [kLogSoftmaxWarps] per-warp maxima, then sums
  float& row_max = smem[num::kLogSoftmaxWarps];
  float& log_sum = smem[num::kLogSoftmaxWarps + 1];
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

}  // namespace kvfid::engine::kernels
