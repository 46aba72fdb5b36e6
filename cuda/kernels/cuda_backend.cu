// The CUDA engine: device buffers, kernel launches, and the EngineBackend that uploads
// a kvfid::Model. All arithmetic is in kernels.cuh.
#include <cuda_runtime.h>

#include <algorithm>
#include <span>
#include <string>

#include "cuda/engine/packed_model.h"
#include "cuda/engine/rope_table.h"
#include "cuda/engine/sequence_buffers.h"
#include "cuda/engine/split_keys.h"
#include "cuda/kernels/cuda_engine.h"
#include "cuda/kernels/device_state.cuh"
#include "cuda/kernels/kernels.cuh"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"
#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using kernels::RowInfo;
using ref::FloatFormat;
using launch::grid_for;
using launch::matvec;
using launch::rmsnorm;
using launch::to_host;

template <FloatFormat W, int kTokens>
void matvec_tiled(const void* w, const float* x, const float* bias, float* y, int n, int rows, int cols, bool accumulate) {
  using T = typename num::Storage<W>::T;
  const dim3 grid((rows + kernels::kMatvecWarps - 1) / kernels::kMatvecWarps, (n + kTokens - 1) / kTokens);
  KVFID_LAUNCH(grid, kernels::kMatvecWarps * num::kWarp, 0, kernels::matvec_kernel<W, kTokens>)(
      static_cast<const T*>(w), x, bias, y, n, rows, cols, accumulate, cols % num::kVec == 0);
  KVFID_LAUNCHED("matvec_kernel");
}

}  // namespace

// Decode (one row) takes the one-token kernel; the tile size changes which tokens share
// a weight load, never the order of any output's sum.
template <FloatFormat W>
void launch::matvec(const void* w, const float* x, const float* bias, float* y, int n, int rows, int cols,
                    bool accumulate) {
  if (n == 1) matvec_tiled<W, 1>(w, x, bias, y, n, rows, cols, accumulate);
  else matvec_tiled<W, kernels::kTokTile>(w, x, bias, y, n, rows, cols, accumulate);
}
template void launch::matvec<FloatFormat::f32>(const void*, const float*, const float*, float*, int, int, int, bool);
template void launch::matvec<FloatFormat::f16>(const void*, const float*, const float*, float*, int, int, int, bool);
template void launch::matvec<FloatFormat::bf16>(const void*, const float*, const float*, float*, int, int, int, bool);

void launch::rmsnorm(const float* x, const float* w, float eps, int dim, int rows, float* y) {
  constexpr int kRowsPerBlock = 4;
  KVFID_LAUNCH((rows + kRowsPerBlock - 1) / kRowsPerBlock, kRowsPerBlock * num::kWarp, 0, kernels::rmsnorm_kernel)(
      x, w, eps, dim, rows, y);
  KVFID_LAUNCHED("rmsnorm_kernel");
}

void require_cuda_device() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    throw BackendUnavailable(std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")");
  if (count == 0) throw BackendUnavailable("no CUDA device present");
}

CudaEngine::CudaEngine(const ModelConfig& config, FloatFormat weights, const KvPlan& kv, const DeviceWeights& device_weights,
                       SplitMode split, LatentPath latent)
    : s_(std::make_unique<State>()) {
  require_cuda_device();
  s_->c = config;
  s_->wf = weights;
  s_->plan = kv;
  s_->split_mode = split;
  s_->latent_path = latent;
  s_->w = device_weights;
  s_->eps = float(config.rms_norm_eps);
  s_->scale = attention_scale(config);
  if (!kv.fast)
    KVFID_CUDA(cudaMemcpy(s_->kv_scales.get(kv.scales.size()), kv.scales.data(), kv.scales.size() * 4,
                          cudaMemcpyHostToDevice));
  const quant::Rotation& rot = kv.policy.rotation;
  s_->rotation = quant::view_of(rot);
  if (!rot.signs.empty()) {
    s_->rotation.signs = s_->rot_signs.get(rot.signs.size());
    KVFID_CUDA(cudaMemcpy(s_->rot_signs.p, rot.signs.data(), rot.signs.size() * 4, cudaMemcpyHostToDevice));
  }
  if (!rot.matrix.empty()) {
    s_->rotation.matrix = s_->rot_matrix.get(rot.matrix.size());
    KVFID_CUDA(cudaMemcpy(s_->rot_matrix.p, rot.matrix.data(), rot.matrix.size() * 4, cudaMemcpyHostToDevice));
  }
}

CudaEngine::CudaEngine(const ModelConfig& config, FloatFormat weights, FloatFormat kv, const DeviceWeights& device_weights)
    : CudaEngine(config, weights, make_kv_plan(quant::plain_kv_policy_spec(kv), {}, config), device_weights) {}

CudaEngine::~CudaEngine() = default;

int CudaEngine::add_sequence(int capacity) {
  State& s = *s_;
  if (capacity < 1 || capacity > s.c.max_seq)
    throw InputError("engine", "sequence capacity " + std::to_string(capacity) + " outside [1, max_seq=" +
                                   std::to_string(s.c.max_seq) + "]");
  if (capacity > s.rope_positions) {
    const RopeTable t = make_rope_table(s.c, capacity);
    KVFID_CUDA(cudaMemcpy(s.rope_cos.get(t.cos.size()), t.cos.data(), t.cos.size() * 4, cudaMemcpyHostToDevice));
    KVFID_CUDA(cudaMemcpy(s.rope_sin.get(t.sin.size()), t.sin.data(), t.sin.size() * 4, cudaMemcpyHostToDevice));
    s.rope_positions = capacity;
  }
  const SequenceSizes sizes = sequence_sizes(s.plan, s.c, capacity);
  DeviceSequence q;
  q.capacity = capacity;
  auto zeroed = [](std::size_t bytes) {
    void* p = device_alloc<std::uint8_t>(bytes);
    KVFID_CUDA(cudaMemset(p, 0, std::max<std::size_t>(bytes, 1)));
    return p;
  };
  if (s.plan.policy.evict) {
    q.evict = std::make_unique<CacheEviction>(*s.plan.policy.evict, s.c.n_layers, s.c.n_kv_heads, capacity);
    q.planes = evicted_planes(*s.plan.policy.evict, s.c, capacity);
  }
  if (s.c.mla.active()) {  // the cache rows and their reconstructions instead of K and V planes
    q.latent = zeroed(sizes.latent);
    q.rk = static_cast<float*>(zeroed(sizes.rk));
    q.rv = static_cast<float*>(zeroed(sizes.rv));
    s.seqs.push_back(std::move(q));
    return int(s.seqs.size()) - 1;
  }
  q.cache = zeroed(sizes.cache);
  if (sizes.hot) q.hot = static_cast<float*>(zeroed(sizes.hot));
  if (!s.plan.fast && !s.plan.policy.evict) {
    if (sizes.raw) q.raw = static_cast<float*>(zeroed(sizes.raw));
    q.code_offsets = sizes.code_offsets;
    q.codes = static_cast<std::uint8_t*>(zeroed(sizes.codes));
    std::vector<std::uint8_t*> table;  // [n_layers, 2]
    for (std::size_t i = 0; i + 1 < q.code_offsets.size(); ++i) table.push_back(q.codes + q.code_offsets[i]);
    q.code_table = device_alloc<std::uint8_t*>(table.size());
    KVFID_CUDA(cudaMemcpy(q.code_table, table.data(), table.size() * sizeof(std::uint8_t*), cudaMemcpyHostToDevice));
  }
  s.seqs.push_back(std::move(q));
  return int(s.seqs.size()) - 1;
}

int CudaEngine::fork_sequence(int source, int prefix_length, int capacity) {
  State& s = *s_;
  const int id = add_sequence(capacity);
  const DeviceSequence& from = s.seqs[source];
  const DeviceSequence& to = s.seqs[id];
  auto base = [](const DeviceSequence& q, SequenceBuffer b) -> std::uint8_t* {
    switch (b) {
      case SequenceBuffer::cache: return static_cast<std::uint8_t*>(q.cache);
      case SequenceBuffer::hot: return reinterpret_cast<std::uint8_t*>(q.hot);
      case SequenceBuffer::raw: return reinterpret_cast<std::uint8_t*>(q.raw);
      case SequenceBuffer::codes: return q.codes;
      case SequenceBuffer::latent: return static_cast<std::uint8_t*>(q.latent);
      case SequenceBuffer::rk: return reinterpret_cast<std::uint8_t*>(q.rk);
      case SequenceBuffer::rv: return reinterpret_cast<std::uint8_t*>(q.rv);
    }
    return nullptr;
  };
  // Each copy one strided device-to-device cudaMemcpy2D.
  for (const StridedCopy& c : fork_copies(s.plan, s.c, from.capacity, capacity, prefix_length))
    KVFID_CUDA(cudaMemcpy2D(base(to, c.buffer) + c.dst_offset, c.dst_pitch, base(from, c.buffer) + c.src_offset,
                            c.src_pitch, c.width, c.height, cudaMemcpyDeviceToDevice));
  return id;
}

namespace {

// A block's output added to the residual x ([n, dim]): project(y, accumulate) writes it,
// straight into x (accumulating, as the twin's x + proj), or under Gemma 2's post-norm
// (post_norm set) into `scratch`, normed there in place, then added.
template <class Project>
void block_out(const CudaEngine::State& s, int n, Project project, const float* post_norm, float* x, float* scratch) {
  if (!post_norm) return project(x, true);
  const int dim = s.c.dim;
  project(scratch, false);
  rmsnorm(scratch, post_norm, s.eps, dim, n, scratch);
  const std::size_t count = std::size_t(n) * dim;
  KVFID_LAUNCH(grid_for(count), 256, 0, kernels::add_kernel)(x, scratch, count);
  KVFID_LAUNCHED("add_kernel");
}

// Decode when every sequence in the step contributes one row (a decode step),
// prefill otherwise; the two give identical bits (attention_math.h).
bool is_decode_step(const std::vector<StepRow>& rows) {
  for (std::size_t i = 1; i < rows.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (rows[i].seq == rows[j].seq) return false;
  return true;
}

// The most attention splits of `split` keys any row of the step has: the decode grid's
// depth (a row with fewer leaves its extra blocks at once; no block is launched for
// splits no row has, whatever the sequences' capacities).
int most_splits(const std::vector<StepRow>& rows, int split) {
  int splits = 1;
  for (const StepRow& r : rows) splits = std::max(splits, num::split_count(r.pos + 1, split));
  return splits;
}

int multiprocessors() {
  static const int count = [] {
    int c = 0;
    KVFID_CUDA(cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, 0));
    return c;
  }();
  return count;
}

// Query heads per decode attention block: the whole group when (row, KV head, split)
// blocks already number twice the multiprocessors, else the group spread over enough
// blocks for that (a 4K-token step of a 4-KV-head model has only 64 such blocks).
int decode_heads_per_block(int group, int blocks) {
  const int wanted = 2 * multiprocessors();
  if (blocks >= wanted) return group;
  const int head_blocks = std::min(group, (wanted + blocks - 1) / blocks);
  return (group + head_blocks - 1) / head_blocks;
}

template <FloatFormat K, bool kTiered>
void attention(const kernels::AttnArgs& a, int n, bool decode, int max_splits, Grow<float>& partial, float* att,
               float* stats, int n_kv_heads) {
  const int hd = a.base.head_dim;
  const std::size_t prefill_shared = (kernels::AttnShared::floats(a.group, hd) + std::size_t(a.group) * hd + 2 * a.group) * 4;
  // Beyond 48 KiB of dynamic shared memory a kernel must opt in (large GQA groups).
  static const bool opted_in = [&] {
    int limit = 0;
    KVFID_CUDA(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    KVFID_CUDA(cudaFuncSetAttribute(kernels::attn_decode_kernel<K, kTiered>, cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
    KVFID_CUDA(cudaFuncSetAttribute(kernels::attn_prefill_kernel<K, kTiered>, cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
    return true;
  }();
  (void)opted_in;
  if (decode) {
    float* ws = partial.get(std::size_t(n) * a.n_heads * max_splits * (2 + hd));
    const int per_block = decode_heads_per_block(a.group, n * n_kv_heads * max_splits);
    const int head_blocks = (a.group + per_block - 1) / per_block;
    const std::size_t shared = kernels::AttnShared::floats(per_block, hd) * 4;
    KVFID_LAUNCH(dim3(n, n_kv_heads * head_blocks, max_splits), kernels::kAttnThreads, shared, kernels::attn_decode_kernel<K, kTiered>)(
        a, max_splits, per_block, ws);
    KVFID_LAUNCHED("attn_decode_kernel");
    KVFID_LAUNCH(dim3(n, a.n_heads), std::min(hd, 256), 0, kernels::attn_combine_kernel)(ws, a.rows, a.n_heads, hd, max_splits, a.split,
                                                                          a.window, att, stats);
    KVFID_LAUNCHED("attn_combine_kernel");
  } else {
    KVFID_LAUNCH(dim3(n, n_kv_heads), kernels::kAttnThreads, prefill_shared, kernels::attn_prefill_kernel<K, kTiered>)(a, att, stats);
    KVFID_LAUNCHED("attn_prefill_kernel");
  }
}

template <FloatFormat W, FloatFormat K, bool kTiered>
void forward_impl(CudaEngine::State& s, const std::vector<StepRow>& rows, bool want_taps, StepOutput* out);

// The step's rows as the kernels see them.
kernels::RowInfo row_info(const DeviceSequence& q, int pos) {
  return {q.cache, q.capacity, pos, q.hot, q.raw, q.code_table};
}

}  // namespace

void CudaEngine::forward(const std::vector<StepRow>& rows, bool want_taps, StepOutput* taps_out) {
  State& s = *s_;
  for (const StepRow& r : rows) {
    if (r.seq < 0 || r.seq >= int(s.seqs.size())) throw InputError("engine", "unknown sequence id");
    if (r.pos >= s.seqs[r.seq].capacity) throw InputError("engine", "sequence capacity exceeded");
    if (r.token < 0 || r.token >= s.c.vocab) throw InputError("engine", "token id outside the vocabulary");
  }
  if (taps_out) taps_out->layers.resize(want_taps ? s.c.n_layers : 0);
  if (rows.empty()) {  // no kernel may be launched with an empty grid
    if (taps_out)
      for (LayerTaps& t : taps_out->layers) t = LayerTaps{};
    return;
  }
  num::dispatch_fmt(s.wf, [&]<FloatFormat W>() {
    if (!s.plan.fast) return forward_impl<W, FloatFormat::f32, true>(s, rows, want_taps, taps_out);
    num::dispatch_fmt(*s.plan.fast, [&]<FloatFormat K>() { forward_impl<W, K, false>(s, rows, want_taps, taps_out); });
  });
}

namespace {

// Every head vector of x ([vectors, head_dim]) rotated, or rotated back (`inverse`).
void rotate_heads(const quant::RotationView& rot, float* x, int vectors, bool inverse) {
  constexpr int kThreads = 128;
  if (vectors == 0) return;  // no kernel may be launched with an empty grid
  KVFID_LAUNCH((vectors + kThreads - 1) / kThreads, kThreads, 0, kernels::rotate_heads_kernel)(x, vectors, rot, inverse);
  KVFID_LAUNCHED("rotate_heads_kernel");
}

// RoPE'd q and k and v rotated (kv_rotation.h), the twin's order: q heads, then per KV
// head its K and its V -- the kernels touch disjoint vectors, so the order is only the
// twin's bookkeeping, not the bits.
void rotate_qkv(const CudaEngine::State& s, int n, float* q, float* k, float* v) {
  rotate_heads(s.rotation, q, n * s.c.n_heads, false);
  rotate_heads(s.rotation, k, n * s.c.n_kv_heads, false);
  rotate_heads(s.rotation, v, n * s.c.n_kv_heads, false);
}

// The tiered path's store of layer l (kv_plan.h), kernel by kernel in the twin's
// order (store_tiered): RoPE; hot and raw forms; V's and (without KIVI) K's row blocks;
// (KIVI) the key groups rows complete; then k and v become the rows' own reads.
void store_tiered(CudaEngine::State& s, int l, int n, float* q, float* k, float* v, const kernels::RowInfo* rows_d,
                  const kernels::RopeArgs& rope, const num::KvLayout& base) {
  const ModelConfig& c = s.c;
  const KvPlan& plan = s.plan;
  KVFID_LAUNCH(n, 128, 0, kernels::rope_kernel)(q, k, rows_d, rope, base, c.n_heads);
  KVFID_LAUNCHED("rope_kernel");
  if (plan.policy.rotation.active()) rotate_qkv(s, n, q, k, v);
  if (plan.hot_plane || plan.policy.kivi) {
    KVFID_LAUNCH(n, 128, 0, kernels::store_hot_raw_kernel)(k, v, rows_d, base, l, plan.hot_plane, plan.policy.kivi);
    KVFID_LAUNCHED("store_hot_raw_kernel");
  }
  const float* k_scales = s.kv_scales.p + std::size_t(2 * l) * c.n_kv_heads;
  const float* v_scales = k_scales + c.n_kv_heads;
  constexpr int kThreads = 128;
  auto encode_rows = [&](int format, const float* x, bool values, const float* scales) {
    quant::with_codec(format, [&]<class C>() {
      const int blocks = quant::row_block_count(c.kv_dim(), C::kBlock);
      KVFID_LAUNCH(dim3(n, (blocks + kThreads - 1) / kThreads), kThreads, 0, kernels::encode_rows_kernel<C>)(x, rows_d, base, l,
                                                                                               values, scales);
      KVFID_LAUNCHED("encode_rows_kernel");
    });
  };
  encode_rows(plan.policy.v[l].format, v, true, v_scales);
  if (!plan.policy.kivi) {
    encode_rows(plan.policy.k[l].format, k, false, k_scales);
  } else {
    quant::with_codec(plan.policy.k[l].format, [&]<class C>() {
      KVFID_LAUNCH(n, kThreads, 0, kernels::encode_key_groups_kernel<C>)(rows_d, base, l, k_scales);
      KVFID_LAUNCHED("encode_key_groups_kernel");
    });
  }
  KVFID_LAUNCH(n, 128, 0, kernels::own_read_kernel)(k, v, rows_d, base, l, plan.policy.hot_window, plan.k_group[l]);
  KVFID_LAUNCHED("own_read_kernel");
}

// Layer l's attention of the step's rows from xn to att (and the taps' q, k, v, stats):
// q, k, v projected, Qwen3's q/k norms, RoPE (and the policy's rotation), then the
// cache's store and the attention kernels, or an eviction's row-by-row path.
template <FloatFormat W, FloatFormat K, bool kTiered>
void dense_attention(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, const RowInfo* rows_d,
                     const kernels::RopeArgs& rope, const num::KvLayout& base, bool decode, int split, bool want_taps,
                     StepOutput* out) {
  const ModelConfig& c = s.c;
  const int n = int(rows.size()), hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim();
  const DeviceLayerWeights& w = s.w.layers[l];
  float *xn = s.xn.p, *q = s.q.p, *k = s.k.p, *v = s.v.p, *att = s.att.p, *stats = s.stats.p;
  matvec<W>(w.wq, xn, w.bq, q, n, qd, c.dim, false);
  matvec<W>(w.wk, xn, w.bk, k, n, kvd, c.dim, false);
  matvec<W>(w.wv, xn, w.bv, v, n, kvd, c.dim, false);
  if (c.qk_norm) {  // Qwen3: each head of q and k RMSNorm'd in place (a warp per head: rmsnorm_kernel's
                    // lanes write only what they read themselves, after the row's sum is reduced)
    rmsnorm(q, w.q_norm, s.eps, hd, n * c.n_heads, q);
    rmsnorm(k, w.k_norm, s.eps, hd, n * c.n_kv_heads, k);
  }
  const bool rotated = s.plan.policy.rotation.active();
  if (s.plan.policy.evict) {  // RoPE and the rotation here; the stores row by row with the attention
    KVFID_LAUNCH(n, 128, 0, kernels::rope_kernel)(q, k, rows_d, rope, base, c.n_heads);
    KVFID_LAUNCHED("rope_kernel");
    if (rotated) rotate_qkv(s, n, q, k, v);
    evicting_attention(s, l, rows, split, want_taps, out);
  } else {
    if constexpr (kTiered) {
      store_tiered(s, l, n, q, k, v, rows_d, rope, base);
    } else {
      if (rotated) {
        KVFID_LAUNCH(n, 128, 0, kernels::rope_kernel)(q, k, rows_d, rope, base, c.n_heads);
        KVFID_LAUNCHED("rope_kernel");
        rotate_qkv(s, n, q, k, v);
      }
      KVFID_LAUNCH(n, 128, 0, kernels::rope_store_kernel<K>)(q, k, v, rows_d, rope, base, l, c.n_heads, rotated);
      KVFID_LAUNCHED("rope_store_kernel");
    }
    const kernels::AttnArgs a{q, rows_d, base, l, c.n_heads, c.group(), s.scale, s.plan.policy.hot_window,
                              s.plan.k_group[l], split, c.window_of(l), float(c.attn_softcap)};
    attention<K, kTiered>(a, n, decode, most_splits(rows, split), s.partial, att, stats, c.n_kv_heads);
  }
  if (rotated) rotate_heads(s.rotation, att, n * c.n_heads, true);  // back to the model's basis
}

template <FloatFormat W, FloatFormat K, bool kTiered>
void forward_impl(CudaEngine::State& s, const std::vector<StepRow>& rows, bool want_taps, StepOutput* out) {
  const ModelConfig& c = s.c;
  const int n = int(rows.size());
  const int hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim(), vd = c.v_dim(), out_dim = c.attn_out_dim();
  s.rows_host.resize(n);
  s.tokens_host.resize(n);
  for (int r = 0; r < n; ++r) {
    s.rows_host[r] = row_info(s.seqs[rows[r].seq], rows[r].pos);
    s.tokens_host[r] = rows[r].token;
  }
  RowInfo* rows_d = s.rows.get(n);
  int* tokens_d = s.tokens.get(n);
  KVFID_CUDA(cudaMemcpy(rows_d, s.rows_host.data(), n * sizeof(RowInfo), cudaMemcpyHostToDevice));
  KVFID_CUDA(cudaMemcpy(tokens_d, s.tokens_host.data(), n * sizeof(int), cudaMemcpyHostToDevice));
  float* x = s.x.get(std::size_t(n) * c.dim);
  float* xn = s.xn.get(std::size_t(n) * c.dim);
  float* q = s.q.get(std::size_t(n) * qd);
  float* k = s.k.get(std::size_t(n) * kvd);
  float* v = s.v.get(std::size_t(n) * vd);
  float* att = s.att.get(std::size_t(n) * out_dim);
  float* h1 = s.h1.get(std::size_t(n) * c.hidden);
  float* h3 = s.h3.get(std::size_t(n) * c.hidden);
  float* stats = s.stats.get(std::size_t(n) * c.n_heads * 2);
  float* logits = s.logits.get(std::size_t(n) * c.vocab);

  using T = typename num::Storage<W>::T;
  KVFID_LAUNCH(n, 256, 0, kernels::embed_kernel<W>)(static_cast<const T*>(s.w.embedding), tokens_d, c.dim, float(c.embed_scale), x);
  KVFID_LAUNCHED("embed_kernel");
  const kernels::RopeArgs rope{s.rope_cos.p, s.rope_sin.p, hd / 2, c.rope == RopeStyle::interleaved};
  const num::KvLayout base{c.n_layers, c.n_kv_heads, hd, 0};
  const bool decode = is_decode_step(rows);
  const int split = step_split_keys(s.split_mode, rows, c.n_kv_heads);  // keys per attention split
  for (int l = 0; l < c.n_layers; ++l) {
    const DeviceLayerWeights& w = s.w.layers[l];
    rmsnorm(x, w.attn_norm, s.eps, c.dim, n, xn);
    if (c.mla.active()) {
      latent_layer(s, l, rows, split, want_taps, out);
    } else {
      dense_attention<W, K, kTiered>(s, l, rows, rows_d, rope, base, decode, split, want_taps, out);
    }
    block_out(s, n, [&](float* y, bool add) { matvec<W>(w.wo, att, nullptr, y, n, c.dim, out_dim, add); },
              w.post_attn_norm, x, xn);
    rmsnorm(x, w.ffn_norm, s.eps, c.dim, n, xn);
    matvec<W>(w.w1, xn, nullptr, h1, n, c.hidden, c.dim, false);
    matvec<W>(w.w3, xn, nullptr, h3, n, c.hidden, c.dim, false);
    const std::size_t hn = std::size_t(n) * c.hidden;
    KVFID_LAUNCH(grid_for(hn), 256, 0, kernels::gated_kernel)(h1, h3, hn, c.activation == Activation::gelu_tanh);
    KVFID_LAUNCHED("gated_kernel");
    block_out(s, n, [&](float* y, bool add) { matvec<W>(w.w2, h1, nullptr, y, n, c.dim, c.hidden, add); }, w.post_ffn_norm,
              x, xn);
    if (want_taps && out) {
      LayerTaps& t = out->layers[l];
      to_host(t.q, q, std::size_t(n) * qd);
      to_host(t.k, k, std::size_t(n) * kvd);
      to_host(t.v, v, std::size_t(n) * vd);
      to_host(t.stats, stats, std::size_t(n) * c.n_heads * 2);
      to_host(t.attn_out, att, std::size_t(n) * out_dim);
      to_host(t.out, x, std::size_t(n) * c.dim);
    }
  }
  rmsnorm(x, s.w.final_norm, s.eps, c.dim, n, xn);
  matvec<W>(s.w.classifier, xn, nullptr, logits, n, c.vocab, c.dim, false);
  if (c.final_softcap > 0) {
    const std::size_t count = std::size_t(n) * c.vocab;
    KVFID_LAUNCH(grid_for(count), 256, 0, kernels::soft_cap_kernel)(logits, count, float(c.final_softcap));
    KVFID_LAUNCHED("soft_cap_kernel");
  }
}

}  // namespace

void CudaEngine::copy_logits(int rows, std::vector<float>& logits) const {
  to_host(logits, s_->logits.p, std::size_t(rows) * s_->c.vocab);
}

void CudaEngine::copy_logprobs(int rows, std::vector<float>& logprobs) {
  State& s = *s_;
  const std::size_t count = std::size_t(rows) * s.c.vocab;
  float* lp = s.logprobs.get(count);
  if (rows > 0) {  // no kernel may be launched with an empty grid
    KVFID_LAUNCH(rows, num::kLogSoftmaxThreads, kernels::kLogSoftmaxShared * 4, kernels::log_softmax_kernel)(s.logits.p, s.c.vocab, lp);
    KVFID_LAUNCHED("log_softmax_kernel");
  }
  to_host(logprobs, lp, count);
}

void CudaEngine::attention_only(const std::vector<StepRow>& rows) {
  State& s = *s_;
  const int n = int(rows.size());
  s.rows_host.resize(n);
  for (int r = 0; r < n; ++r) s.rows_host[r] = row_info(s.seqs[rows[r].seq], rows[r].pos);
  RowInfo* rows_d = s.rows.get(n);
  KVFID_CUDA(cudaMemcpy(rows_d, s.rows_host.data(), n * sizeof(RowInfo), cudaMemcpyHostToDevice));
  const ModelConfig& c = s.c;
  float* q = s.q.get(std::size_t(n) * c.q_dim());
  float* att = s.att.get(std::size_t(n) * c.q_dim());
  float* stats = s.stats.get(std::size_t(n) * c.n_heads * 2);
  const int split = step_split_keys(s.split_mode, rows, c.n_kv_heads);
  const kernels::AttnArgs a{q,       rows_d, {c.n_layers, c.n_kv_heads, c.head_dim, 0}, 0, c.n_heads, c.group(),
                            s.scale, s.plan.policy.hot_window, s.plan.k_group[0], split};
  const int splits = most_splits(rows, split);
  if (!s.plan.fast) return attention<FloatFormat::f32, true>(a, n, true, splits, s.partial, att, stats, c.n_kv_heads);
  num::dispatch_fmt(*s.plan.fast, [&]<FloatFormat K>() { attention<K, false>(a, n, true, splits, s.partial, att, stats, c.n_kv_heads); });
}

// As the twin's: under latent attention each token's keys and values as its row
// reconstructs them (the bytes: its rows'); under an eviction the cached tokens by their
// slots (gather_evicted_values); else the planes (gather_cache_values).
CacheValues CudaEngine::cache_values(int seq, int layer, int length) const {
  const State& s = *s_;
  const DeviceSequence& q = s.seqs[seq];
  if (s.c.mla.active()) {
    CacheValues v;
    v.k.resize(std::size_t(s.c.n_heads) * length * s.c.head_dim);
    v.v.resize(std::size_t(s.c.n_heads) * length * s.c.v_head_dim());
    const std::size_t heads = std::size_t(layer) * s.c.n_heads;  // the layer's first head block
    if (length > 0) {
      KVFID_CUDA(cudaMemcpy2D(v.k.data(), std::size_t(length) * s.c.head_dim * 4, q.rk + heads * q.capacity * s.c.head_dim,
                              std::size_t(q.capacity) * s.c.head_dim * 4, std::size_t(length) * s.c.head_dim * 4,
                              s.c.n_heads, cudaMemcpyDeviceToHost));
      KVFID_CUDA(cudaMemcpy2D(v.v.data(), std::size_t(length) * s.c.v_head_dim() * 4,
                              q.rv + heads * q.capacity * s.c.v_head_dim(), std::size_t(q.capacity) * s.c.v_head_dim() * 4,
                              std::size_t(length) * s.c.v_head_dim() * 4, s.c.n_heads, cudaMemcpyDeviceToHost));
    }
    v.k_bytes = std::size_t(length) * latent_row_bytes(s.plan, s.c, layer);
    return v;
  }
  if (q.evict) {
    const num::KvLayout& lay = q.planes.layer[std::size_t(layer)];
    const std::size_t at = q.planes.k_at[std::size_t(layer)];
    std::vector<float> planes(2 * lay.plane());  // the layer's K and V slot planes, FP32 (contiguous)
    num::dispatch_fmt(s.plan.evict_planes, [&]<FloatFormat K>() {
      std::vector<typename num::Storage<K>::T> stored(planes.size());
      KVFID_CUDA(cudaMemcpy(stored.data(), static_cast<const typename num::Storage<K>::T*>(q.cache) + at,
                            stored.size() * sizeof(stored[0]), cudaMemcpyDeviceToHost));
      for (std::size_t i = 0; i < planes.size(); ++i) planes[i] = num::Storage<K>::load(stored[i]);
    });
    std::vector<float> hot(s.plan.hot_plane ? planes.size() : 0);
    if (s.plan.hot_plane) KVFID_CUDA(cudaMemcpy(hot.data(), q.hot + at, hot.size() * 4, cudaMemcpyDeviceToHost));
    return gather_evicted_values(s.plan, lay, *q.evict, layer, length, q.capacity, planes.data(),
                                 planes.data() + lay.plane(), s.plan.hot_plane ? hot.data() : nullptr,
                                 s.plan.hot_plane ? hot.data() + lay.plane() : nullptr);
  }
  const num::KvLayout lay{s.c.n_layers, s.c.n_kv_heads, s.c.head_dim, q.capacity};
  // The layer's K and V planes (adjacent in KvLayout), decoded to FP32 on the host.
  std::vector<float> planes(2 * lay.plane());
  if (s.plan.fast) {
    num::dispatch_fmt(*s.plan.fast, [&]<FloatFormat K>() {
      std::vector<typename num::Storage<K>::T> stored(planes.size());
      KVFID_CUDA(cudaMemcpy(stored.data(), static_cast<const typename num::Storage<K>::T*>(q.cache) + lay.k_offset(layer),
                            stored.size() * sizeof(stored[0]), cudaMemcpyDeviceToHost));
      for (std::size_t i = 0; i < planes.size(); ++i) planes[i] = num::Storage<K>::load(stored[i]);
    });
    return gather_cache_values(s.plan, lay, layer, length, planes.data(), planes.data() + lay.plane(), nullptr, nullptr);
  }
  KVFID_CUDA(cudaMemcpy(planes.data(), static_cast<const float*>(q.cache) + lay.k_offset(layer), planes.size() * 4,
                        cudaMemcpyDeviceToHost));
  std::vector<float> hot(s.plan.hot_plane ? planes.size() : 0);
  if (s.plan.hot_plane)
    KVFID_CUDA(cudaMemcpy(hot.data(), q.hot + lay.k_offset(layer), hot.size() * 4, cudaMemcpyDeviceToHost));
  return gather_cache_values(s.plan, lay, layer, length, planes.data(), planes.data() + lay.plane(),
                             s.plan.hot_plane ? hot.data() : nullptr, s.plan.hot_plane ? hot.data() + lay.plane() : nullptr);
}

std::vector<quant::EvictionEvent> CudaEngine::evictions(int seq) const {
  const DeviceSequence& q = s_->seqs[seq];
  return q.evict ? q.evict->events() : std::vector<quant::EvictionEvent>{};
}

namespace {

// Owns device copies of a packed model.
class UploadedModel {
 public:
  explicit UploadedModel(const PackedModel& m) {
    w.embedding = upload(m.embedding.bytes());
    for (const PackedLayer& l : m.layers) {
      DeviceLayerWeights d;
      d.attn_norm = upload_f(l.attn_norm);
      d.wq = upload(l.wq.bytes());
      d.wk = upload(l.wk.bytes());
      d.wv = upload(l.wv.bytes());
      d.bq = l.bq.empty() ? nullptr : upload_f(l.bq);
      d.bk = l.bk.empty() ? nullptr : upload_f(l.bk);
      d.bv = l.bv.empty() ? nullptr : upload_f(l.bv);
      d.q_norm = l.q_norm.empty() ? nullptr : upload_f(l.q_norm);
      d.k_norm = l.k_norm.empty() ? nullptr : upload_f(l.k_norm);
      d.wo = upload(l.wo.bytes());
      d.ffn_norm = upload_f(l.ffn_norm);
      d.post_attn_norm = l.post_attn_norm.empty() ? nullptr : upload_f(l.post_attn_norm);
      d.post_ffn_norm = l.post_ffn_norm.empty() ? nullptr : upload_f(l.post_ffn_norm);
      d.w1 = upload(l.w1.bytes());
      d.w3 = upload(l.w3.bytes());
      d.w2 = upload(l.w2.bytes());
      if (!l.wkv_a.bytes().empty()) {  // latent attention
        d.wq_a = l.wq_a.bytes().empty() ? nullptr : upload(l.wq_a.bytes());
        d.q_a_norm = l.q_a_norm.empty() ? nullptr : upload_f(l.q_a_norm);
        d.wkv_a = upload(l.wkv_a.bytes());
        d.kv_a_norm = upload_f(l.kv_a_norm);
        d.wkv_b = upload(l.wkv_b.bytes());
      }
      w.layers.push_back(d);
    }
    w.final_norm = upload_f(m.final_norm);
    // A tied classifier packs to the embedding's own bytes: one device copy serves both.
    w.classifier = m.classifier.bytes().data() == m.embedding.bytes().data() ? w.embedding : upload(m.classifier.bytes());
  }
  ~UploadedModel() {
    for (void* p : buffers_) cudaFree(p);
  }
  DeviceWeights w;

 private:
  const void* upload(std::span<const std::uint8_t> bytes) {
    void* p = device_alloc<std::uint8_t>(bytes.size());
    buffers_.push_back(p);
    KVFID_CUDA(cudaMemcpy(p, bytes.data(), bytes.size(), cudaMemcpyHostToDevice));
    return p;
  }
  const float* upload_f(const std::vector<float>& v) {
    void* p = device_alloc<float>(v.size());
    buffers_.push_back(p);
    KVFID_CUDA(cudaMemcpy(p, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    return static_cast<const float*>(p);
  }
  std::vector<void*> buffers_;
};

// The cache's plan, refused as the twin refuses it where a latent cache cannot take the policy.
KvPlan backend_plan(const Model& model, const EngineOptions& options) {
  KvPlan plan = make_kv_plan(options.kv, options.kv_scales, model.config);
  if (model.config.mla.active()) quant::require_latent_policy(plan.policy, options.kv.source);
  return plan;
}

class CudaBackend final : public EngineBackend {
 public:
  CudaBackend(const Model& model, const EngineOptions& options)
      : packed_((require_cuda_device(), pack_model(model, options.weights))),
        uploaded_(packed_),
        engine_(model.config, packed_.weights, backend_plan(model, options), uploaded_.w, options.split, options.latent) {}

  int add_sequence(int capacity) override { return engine_.add_sequence(capacity); }
  int fork_sequence(int source, int prefix_length, int capacity) override {
    return engine_.fork_sequence(source, prefix_length, capacity);
  }

  void step(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) override {
    engine_.forward(rows, want_taps, &out);
    engine_.copy_logits(int(rows.size()), out.logits);
  }

  CacheValues cache_values(int seq, int layer, int length) override { return engine_.cache_values(seq, layer, length); }
  std::vector<quant::EvictionEvent> evictions(int seq) override { return engine_.evictions(seq); }

  void log_softmax(const StepOutput& last, std::vector<float>& logprobs) override {
    engine_.copy_logprobs(int(last.logits.size() / packed_.config.vocab), logprobs);
  }

 private:
  PackedModel packed_;
  UploadedModel uploaded_;
  CudaEngine engine_;
};

}  // namespace

std::unique_ptr<EngineBackend> make_cuda_backend(const Model& model, const EngineOptions& options) {
  return std::make_unique<CudaBackend>(model, options);
}

}  // namespace kvfid::engine
