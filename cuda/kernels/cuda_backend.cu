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
#include "cuda/kernels/kernels.cuh"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/row_blocks.h"
#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using kernels::RowInfo;
using ref::FloatFormat;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}
#define KVFID_CUDA(call) check((call), #call)
#define KVFID_LAUNCHED(name) check(cudaGetLastError(), name)

template <class T>
T* device_alloc(std::size_t count) {
  void* p = nullptr;
  KVFID_CUDA(cudaMalloc(&p, std::max<std::size_t>(count, 1) * sizeof(T)));
  return static_cast<T*>(p);
}

// A device buffer that grows (never shrinks) to the largest size asked for.
template <class T>
struct Grow {
  T* p = nullptr;
  std::size_t n = 0;
  T* get(std::size_t count) {
    if (count > n) {
      cudaFree(p);
      p = nullptr;
      p = device_alloc<T>(count);
      n = count;
    }
    return p;
  }
  ~Grow() { cudaFree(p); }
};

}  // namespace

void require_cuda_device() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess)
    throw BackendUnavailable(std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")");
  if (count == 0) throw BackendUnavailable("no CUDA device present");
}

// A sequence's device buffers (kv_plan.h); the tiered ones null on the fast path.
struct DeviceSequence {
  void* cache = nullptr;  // KvLayout in the fast format, or the FP32 cold planes
  int capacity = 0;
  float* hot = nullptr;             // KvLayout FP32 (hot plane)
  float* raw = nullptr;             // KIVI: [n_layers] KvLayout K planes, FP32
  std::uint8_t* codes = nullptr;    // slot regions at KvPlan::code_offsets
  std::uint8_t** code_table = nullptr;  // [n_layers, 2] device pointers into codes
  std::vector<std::size_t> code_offsets;
};

struct CudaEngine::State {
  ModelConfig c;
  FloatFormat wf;
  KvPlan plan;
  SplitMode split_mode = SplitMode::invariant;
  DeviceWeights w;
  float eps = 0, scale = 0;
  int rope_positions = 0;
  Grow<float> rope_cos, rope_sin;  // [positions, head_dim/2]
  Grow<float> kv_scales;           // [n_layers, 2, n_kv_heads] (tiered path)
  Grow<float> rot_signs, rot_matrix;  // the policy's rotation (kv_rotation.h): [head_dim], [head_dim, head_dim]
  quant::RotationView rotation;       // pointing into them
  std::vector<DeviceSequence> seqs;
  // Step buffers, rows-major as in the twin.
  Grow<float> x, xn, q, k, v, att, h1, h3, logits, logprobs, stats, partial;
  Grow<int> tokens;
  Grow<RowInfo> rows;
  std::vector<RowInfo> rows_host;
  std::vector<int> tokens_host;

  ~State() {
    for (DeviceSequence& q : seqs) {
      cudaFree(q.cache);
      cudaFree(q.hot);
      cudaFree(q.raw);
      cudaFree(q.codes);
      cudaFree(q.code_table);
    }
  }
};

CudaEngine::CudaEngine(const ModelConfig& config, FloatFormat weights, const KvPlan& kv, const DeviceWeights& device_weights,
                       SplitMode split)
    : s_(std::make_unique<State>()) {
  require_cuda_device();
  s_->c = config;
  s_->wf = weights;
  s_->plan = kv;
  s_->split_mode = split;
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
  q.cache = zeroed(sizes.cache);
  if (!s.plan.fast) {
    if (sizes.hot) q.hot = static_cast<float*>(zeroed(sizes.hot));
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
  const int id = add_sequence(capacity);
  State& s = *s_;
  const DeviceSequence& from = s.seqs[source];
  const DeviceSequence& to = s.seqs[id];
  auto base = [](const DeviceSequence& q, SequenceBuffer b) -> std::uint8_t* {
    switch (b) {
      case SequenceBuffer::cache: return static_cast<std::uint8_t*>(q.cache);
      case SequenceBuffer::hot: return reinterpret_cast<std::uint8_t*>(q.hot);
      case SequenceBuffer::raw: return reinterpret_cast<std::uint8_t*>(q.raw);
      case SequenceBuffer::codes: return q.codes;
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

template <FloatFormat W, int kTokens>
void matvec_tiled(const void* w, const float* x, const float* bias, float* y, int n, int rows, int cols, bool accumulate) {
  using T = typename num::Storage<W>::T;
  const dim3 grid((rows + kernels::kMatvecWarps - 1) / kernels::kMatvecWarps, (n + kTokens - 1) / kTokens);
  kernels::matvec_kernel<W, kTokens><<<grid, kernels::kMatvecWarps * num::kWarp>>>(
      static_cast<const T*>(w), x, bias, y, n, rows, cols, accumulate, cols % num::kVec == 0);
  KVFID_LAUNCHED("matvec_kernel");
}

// Decode (one row) takes the one-token kernel; the tile size changes which tokens share
// a weight load, never the order of any output's sum.
template <FloatFormat W>
void matvec(const void* w, const float* x, const float* bias, float* y, int n, int rows, int cols, bool accumulate) {
  if (n == 1) matvec_tiled<W, 1>(w, x, bias, y, n, rows, cols, accumulate);
  else matvec_tiled<W, kernels::kTokTile>(w, x, bias, y, n, rows, cols, accumulate);
}

void rmsnorm(const float* x, const float* w, float eps, int dim, int rows, float* y) {
  constexpr int kRowsPerBlock = 4;
  kernels::rmsnorm_kernel<<<(rows + kRowsPerBlock - 1) / kRowsPerBlock, kRowsPerBlock * num::kWarp>>>(x, w, eps, dim,
                                                                                                      rows, y);
  KVFID_LAUNCHED("rmsnorm_kernel");
}

// Blocks for an elementwise kernel of 256 threads over n elements (grid-stride beyond).
int grid_for(std::size_t n) { return int(std::min<std::size_t>((n + 255) / 256, 4096)); }

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
  kernels::add_kernel<<<grid_for(count), 256>>>(x, scratch, count);
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
    kernels::attn_decode_kernel<K, kTiered><<<dim3(n, n_kv_heads * head_blocks, max_splits), kernels::kAttnThreads, shared>>>(
        a, max_splits, per_block, ws);
    KVFID_LAUNCHED("attn_decode_kernel");
    kernels::attn_combine_kernel<<<dim3(n, a.n_heads), std::min(hd, 256)>>>(ws, a.rows, a.n_heads, hd, max_splits, a.split,
                                                                          a.window, att, stats);
    KVFID_LAUNCHED("attn_combine_kernel");
  } else {
    kernels::attn_prefill_kernel<K, kTiered><<<dim3(n, n_kv_heads), kernels::kAttnThreads, prefill_shared>>>(a, att, stats);
    KVFID_LAUNCHED("attn_prefill_kernel");
  }
}

void to_host(std::vector<float>& dst, const float* src, std::size_t count) {
  dst.resize(count);
  if (count == 0) return;
  KVFID_CUDA(cudaMemcpy(dst.data(), src, count * 4, cudaMemcpyDeviceToHost));
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
  kernels::rotate_heads_kernel<<<(vectors + kThreads - 1) / kThreads, kThreads>>>(x, vectors, rot, inverse);
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
  kernels::rope_kernel<<<n, 128>>>(q, k, rows_d, rope, base, c.n_heads);
  KVFID_LAUNCHED("rope_kernel");
  if (plan.policy.rotation.active()) rotate_qkv(s, n, q, k, v);
  if (plan.hot_plane || plan.policy.kivi) {
    kernels::store_hot_raw_kernel<<<n, 128>>>(k, v, rows_d, base, l, plan.hot_plane, plan.policy.kivi);
    KVFID_LAUNCHED("store_hot_raw_kernel");
  }
  const float* k_scales = s.kv_scales.p + std::size_t(2 * l) * c.n_kv_heads;
  const float* v_scales = k_scales + c.n_kv_heads;
  constexpr int kThreads = 128;
  auto encode_rows = [&](int format, const float* x, bool values, const float* scales) {
    quant::with_codec(format, [&]<class C>() {
      const int blocks = quant::row_block_count(c.kv_dim(), C::kBlock);
      kernels::encode_rows_kernel<C><<<dim3(n, (blocks + kThreads - 1) / kThreads), kThreads>>>(x, rows_d, base, l,
                                                                                               values, scales);
      KVFID_LAUNCHED("encode_rows_kernel");
    });
  };
  encode_rows(plan.policy.v[l].format, v, true, v_scales);
  if (!plan.policy.kivi) {
    encode_rows(plan.policy.k[l].format, k, false, k_scales);
  } else {
    quant::with_codec(plan.policy.k[l].format, [&]<class C>() {
      kernels::encode_key_groups_kernel<C><<<n, kThreads>>>(rows_d, base, l, k_scales);
      KVFID_LAUNCHED("encode_key_groups_kernel");
    });
  }
  kernels::own_read_kernel<<<n, 128>>>(k, v, rows_d, base, l, plan.policy.hot_window, plan.k_group[l]);
  KVFID_LAUNCHED("own_read_kernel");
}

template <FloatFormat W, FloatFormat K, bool kTiered>
void forward_impl(CudaEngine::State& s, const std::vector<StepRow>& rows, bool want_taps, StepOutput* out) {
  const ModelConfig& c = s.c;
  const int n = int(rows.size());
  const int hd = c.head_dim, qd = c.q_dim(), kvd = c.kv_dim();
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
  float* v = s.v.get(std::size_t(n) * kvd);
  float* att = s.att.get(std::size_t(n) * qd);
  float* h1 = s.h1.get(std::size_t(n) * c.hidden);
  float* h3 = s.h3.get(std::size_t(n) * c.hidden);
  float* stats = s.stats.get(std::size_t(n) * c.n_heads * 2);
  float* logits = s.logits.get(std::size_t(n) * c.vocab);

  using T = typename num::Storage<W>::T;
  kernels::embed_kernel<W><<<n, 256>>>(static_cast<const T*>(s.w.embedding), tokens_d, c.dim, float(c.embed_scale), x);
  KVFID_LAUNCHED("embed_kernel");
  const kernels::RopeArgs rope{s.rope_cos.p, s.rope_sin.p, hd / 2, c.rope == RopeStyle::interleaved};
  const num::KvLayout base{c.n_layers, c.n_kv_heads, hd, 0};
  const bool decode = is_decode_step(rows);
  const int split = step_split_keys(s.split_mode, rows, c.n_kv_heads);  // keys per attention split
  for (int l = 0; l < c.n_layers; ++l) {
    const DeviceLayerWeights& w = s.w.layers[l];
    rmsnorm(x, w.attn_norm, s.eps, c.dim, n, xn);
    matvec<W>(w.wq, xn, w.bq, q, n, qd, c.dim, false);
    matvec<W>(w.wk, xn, w.bk, k, n, kvd, c.dim, false);
    matvec<W>(w.wv, xn, w.bv, v, n, kvd, c.dim, false);
    if (c.qk_norm) {  // Qwen3: each head of q and k RMSNorm'd in place (a warp per head: rmsnorm_kernel's
                      // lanes write only what they read themselves, after the row's sum is reduced)
      rmsnorm(q, w.q_norm, s.eps, hd, n * c.n_heads, q);
      rmsnorm(k, w.k_norm, s.eps, hd, n * c.n_kv_heads, k);
    }
    if constexpr (kTiered) {
      store_tiered(s, l, n, q, k, v, rows_d, rope, base);
    } else {
      const bool rotated = s.plan.policy.rotation.active();
      if (rotated) {
        kernels::rope_kernel<<<n, 128>>>(q, k, rows_d, rope, base, c.n_heads);
        KVFID_LAUNCHED("rope_kernel");
        rotate_qkv(s, n, q, k, v);
      }
      kernels::rope_store_kernel<K><<<n, 128>>>(q, k, v, rows_d, rope, base, l, c.n_heads, rotated);
      KVFID_LAUNCHED("rope_store_kernel");
    }
    const kernels::AttnArgs a{q, rows_d, base, l, c.n_heads, c.group(), s.scale, s.plan.policy.hot_window,
                              s.plan.k_group[l], split, c.window_of(l), float(c.attn_softcap)};
    attention<K, kTiered>(a, n, decode, most_splits(rows, split), s.partial, att, stats, c.n_kv_heads);
    if (s.plan.policy.rotation.active()) rotate_heads(s.rotation, att, n * c.n_heads, true);  // back to the model's basis
    block_out(s, n, [&](float* y, bool add) { matvec<W>(w.wo, att, nullptr, y, n, c.dim, qd, add); }, w.post_attn_norm,
              x, xn);
    rmsnorm(x, w.ffn_norm, s.eps, c.dim, n, xn);
    matvec<W>(w.w1, xn, nullptr, h1, n, c.hidden, c.dim, false);
    matvec<W>(w.w3, xn, nullptr, h3, n, c.hidden, c.dim, false);
    const std::size_t hn = std::size_t(n) * c.hidden;
    kernels::gated_kernel<<<grid_for(hn), 256>>>(h1, h3, hn, c.activation == Activation::gelu_tanh);
    KVFID_LAUNCHED("gated_kernel");
    block_out(s, n, [&](float* y, bool add) { matvec<W>(w.w2, h1, nullptr, y, n, c.dim, c.hidden, add); }, w.post_ffn_norm,
              x, xn);
    if (want_taps && out) {
      LayerTaps& t = out->layers[l];
      to_host(t.q, q, std::size_t(n) * qd);
      to_host(t.k, k, std::size_t(n) * kvd);
      to_host(t.v, v, std::size_t(n) * kvd);
      to_host(t.stats, stats, std::size_t(n) * c.n_heads * 2);
      to_host(t.attn_out, att, std::size_t(n) * qd);
      to_host(t.out, x, std::size_t(n) * c.dim);
    }
  }
  rmsnorm(x, s.w.final_norm, s.eps, c.dim, n, xn);
  matvec<W>(s.w.classifier, xn, nullptr, logits, n, c.vocab, c.dim, false);
  if (c.final_softcap > 0) {
    const std::size_t count = std::size_t(n) * c.vocab;
    kernels::soft_cap_kernel<<<grid_for(count), 256>>>(logits, count, float(c.final_softcap));
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
    kernels::log_softmax_kernel<<<rows, num::kLogSoftmaxThreads>>>(s.logits.p, s.c.vocab, lp);
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

CacheValues CudaEngine::cache_values(int seq, int layer, int length) const {
  const State& s = *s_;
  const DeviceSequence& q = s.seqs[seq];
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

class CudaBackend final : public EngineBackend {
 public:
  CudaBackend(const Model& model, const EngineOptions& options)
      : packed_((require_cuda_device(), pack_model(model, options.weights))),
        uploaded_(packed_),
        engine_(model.config, packed_.weights, make_kv_plan(options.kv, options.kv_scales, model.config), uploaded_.w,
                options.split) {}

  int add_sequence(int capacity) override { return engine_.add_sequence(capacity); }
  int fork_sequence(int source, int prefix_length, int capacity) override {
    return engine_.fork_sequence(source, prefix_length, capacity);
  }

  void step(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) override {
    engine_.forward(rows, want_taps, &out);
    engine_.copy_logits(int(rows.size()), out.logits);
  }

  CacheValues cache_values(int seq, int layer, int length) override { return engine_.cache_values(seq, layer, length); }

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
