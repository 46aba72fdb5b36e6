#pragma once
// The CUDA engine's device state (cuda_engine.h's CudaEngine::State) and the launch
// helpers its three step paths share: the dense layers (cuda_backend.cu), latent
// attention (cuda_latent.cu) and evicting caches (cuda_eviction.cu). Each file includes
// the kernels it launches itself, so nvcc compiles a kernel in one file only; the
// matvec and RMSNorm launches of the others are cuda_backend.cu's.
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/engine/eviction.h"
#include "cuda/engine/sequence_buffers.h"
#include "cuda/kernels/cuda_engine.h"
#include "cuda/kernels/indexed_attention.cuh"
#include "cuda/kernels/kernel_args.cuh"

namespace kvfid::engine {

inline void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}
#define KVFID_CUDA(call) ::kvfid::engine::cuda_check((call), #call)
#define KVFID_LAUNCHED(name) ::kvfid::engine::cuda_check(cudaGetLastError(), name)
// KVFID_LAUNCH(grid, block, shared bytes, kernel)(arguments...): a kernel launch. The
// CPU suite's emulation of the engine (tests/cuda/kernels/emulation) defines it first,
// to run the kernel's blocks on the CPU.
#ifndef KVFID_LAUNCH
#define KVFID_LAUNCH(grid, block, shared, ...) __VA_ARGS__<<<grid, block, shared>>>
#endif

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

// A sequence's device buffers (kv_plan.h, sequence_buffers.h); the tiered ones null on
// the fast path. Under an eviction `cache` (and `hot`) hold each layer's slot planes
// (EvictedPlanes) and `evict` their bookkeeping on the host; under latent attention
// `latent`, `rk` and `rv` replace the planes (the twin's TwinSequence says how).
struct DeviceSequence {
  void* cache = nullptr;  // KvLayout in the fast format, the FP32 cold planes, or the slot planes
  int capacity = 0;
  float* hot = nullptr;             // KvLayout FP32 (hot plane)
  float* raw = nullptr;             // KIVI: [n_layers] KvLayout K planes, FP32
  std::uint8_t* codes = nullptr;    // slot regions at KvPlan::code_offsets
  std::uint8_t** code_table = nullptr;  // [n_layers, 2] device pointers into codes
  std::vector<std::size_t> code_offsets;
  std::unique_ptr<CacheEviction> evict;  // set under an eviction policy
  EvictedPlanes planes;                  // under an eviction: each layer's slots
  void* latent = nullptr;  // [n_layers, capacity, kv_lora_rank + rope_dim] cache rows
  float* rk = nullptr;     // [n_layers, n_heads, capacity, head_dim] reconstructed keys
  float* rv = nullptr;     // [n_layers, n_heads, capacity, v_head_dim] reconstructed values
};

struct CudaEngine::State {
  ModelConfig c;
  FloatFormat wf;
  KvPlan plan;
  SplitMode split_mode = SplitMode::invariant;
  LatentPath latent_path = LatentPath::reconstruct;
  DeviceWeights w;
  float eps = 0, scale = 0;
  int rope_positions = 0;
  Grow<float> rope_cos, rope_sin;  // [positions, rope_head_dim/2]
  Grow<float> kv_scales;           // [n_layers, 2, n_kv_heads] (tiered path)
  Grow<float> rot_signs, rot_matrix;  // the policy's rotation (kv_rotation.h): [head_dim], [head_dim, head_dim]
  quant::RotationView rotation;       // pointing into them
  std::vector<DeviceSequence> seqs;
  // Step buffers, rows-major as in the twin.
  Grow<float> x, xn, q, k, v, att, h1, h3, logits, logprobs, stats, partial;
  Grow<int> tokens;
  Grow<kernels::RowInfo> rows;
  std::vector<kernels::RowInfo> rows_host;
  std::vector<int> tokens_host;
  // Latent attention's (the twin's qa_ .. olat_), its rows and the probabilities tap.
  Grow<float> qa, kva, lat, kvb, qabs, olat, probs;
  Grow<kernels::LatentRow> latent_rows;
  Grow<std::uint8_t> row_codes;  // a block format's row codes, not kept
  // The listed-key attention's rows (indexed_attention.cuh), and under an eviction one
  // row's key lists [n_kv_heads, slots] (positions, then slots), counts, the slots its
  // token takes, its decoded K and V rows and the probabilities the scorers read.
  Grow<kernels::IndexedKeys> indexed;
  Grow<int> key_lists, token_slots;
  Grow<float> row_k, row_v;
  std::vector<int> key_lists_host;
  std::vector<kernels::IndexedKeys> indexed_host;
  std::vector<float> probs_host, row_k_host;

  ~State() {
    for (DeviceSequence& q : seqs) {
      cudaFree(q.cache);
      cudaFree(q.hot);
      cudaFree(q.raw);
      cudaFree(q.codes);
      cudaFree(q.code_table);
      cudaFree(q.latent);
      cudaFree(q.rk);
      cudaFree(q.rv);
    }
  }
};

namespace launch {

inline void to_host(std::vector<float>& dst, const float* src, std::size_t count) {
  dst.resize(count);
  if (count == 0) return;
  KVFID_CUDA(cudaMemcpy(dst.data(), src, count * 4, cudaMemcpyDeviceToHost));
}

template <class T>
void to_device(Grow<T>& dst, const std::vector<T>& src) {
  T* p = dst.get(src.size());
  if (!src.empty()) KVFID_CUDA(cudaMemcpy(p, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice));
}

// Blocks for an elementwise kernel of 256 threads over n elements (grid-stride beyond).
inline int grid_for(std::size_t n) { return int(std::min<std::size_t>((n + 255) / 256, 4096)); }

// Blocks for a kernel of `threads` threads, one per item of n.
inline int blocks_for(std::size_t n, int threads) { return int((n + threads - 1) / threads); }

// y[t, o] (=|+=) W[o, :] . x[t, :] (+ bias[o]) over n tokens: matvec_kernel (kernels.cuh),
// defined and instantiated for f32, f16 and bf16 weights in cuda_backend.cu.
template <FloatFormat W>
void matvec(const void* w, const float* x, const float* bias, float* y, int n, int rows, int cols, bool accumulate);

// y = RMSNorm(x) * w over `rows` rows of `dim`: rmsnorm_kernel (cuda_backend.cu).
void rmsnorm(const float* x, const float* w, float eps, int dim, int rows, float* y);

// Listed-key attention (indexed_attention.cuh) of `rows` rows over `key_heads` key
// heads, each block as many of a group's query heads as its shared memory holds.
template <FloatFormat K>
void indexed_attention(const kernels::IndexedArgs& a, int rows, int key_heads) {
  static const int limit = [] {
    int bytes = 0;
    KVFID_CUDA(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
    KVFID_CUDA(
        cudaFuncSetAttribute(kernels::attn_indexed_kernel<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    return bytes;
  }();
  auto shared_bytes = [&](int heads) { return kernels::indexed_shared_floats(heads, a.kw, a.vw) * 4; };
  int per_block = a.group;
  while (per_block > 1 && shared_bytes(per_block) > std::size_t(limit)) --per_block;
  if (shared_bytes(per_block) > std::size_t(limit))
    throw std::runtime_error("CUDA: a query head of " + std::to_string(a.kw) + " + " + std::to_string(a.vw) +
                             " floats does not fit one block's shared memory");
  const int head_blocks = (a.group + per_block - 1) / per_block;
  KVFID_LAUNCH(dim3(rows, key_heads * head_blocks), num::kSplit, shared_bytes(per_block),
               kernels::attn_indexed_kernel<K>)(a, per_block);
  KVFID_LAUNCHED("attn_indexed_kernel");
}

// attn_indexed_probs_kernel over rows x n_heads x max_keys threads.
template <FloatFormat K>
void indexed_probs(const kernels::IndexedArgs& a, int rows, int max_keys, float* probs, int width, bool by_position) {
  constexpr int kThreads = 256;
  const std::size_t n = std::size_t(rows) * a.n_heads * max_keys;
  if (n == 0) return;
  KVFID_LAUNCH(blocks_for(n, kThreads), kThreads, 0, kernels::attn_indexed_probs_kernel<K>)(a, rows, max_keys, probs,
                                                                                          width, by_position);
  KVFID_LAUNCHED("attn_indexed_probs_kernel");
}

}  // namespace launch

// Latent attention's layer l of the step (cuda_latent.cu): from xn to att (and the taps'
// q, k, v, stats; with taps, LayerTaps::probs from the path's own scores).
void latent_layer(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, int split, bool want_taps,
                  StepOutput* out);
// decode() of one row x in `format`'s row blocks (kv_encode.h through the one-token
// layout `one`) into `decoded`, the codes not kept: encode_row_kernel (cuda_eviction.cu),
// for an eviction's K and V rows and a latent cache's rows alike.
void encode_row(CudaEngine::State& s, int format, const float* x, const num::KvLayout& one, const float* scales,
                float* decoded);
// An evicting cache's store and attention of layer l (cuda_eviction.cu), q, k and v
// RoPE'd (and rotated) in their step buffers: row by row as the twin's attend_evicting.
void evicting_attention(CudaEngine::State& s, int l, const std::vector<StepRow>& rows, int split, bool want_taps,
                        StepOutput* out);

}  // namespace kvfid::engine
