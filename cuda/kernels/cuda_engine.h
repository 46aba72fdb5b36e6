#pragma once
// The CUDA engine over weights already on the device. The model path (backend.h,
// make_cuda_backend) uploads a kvfid::Model into it; the benchmark fills the device
// buffers itself. Plain C++: no CUDA headers needed to use it.
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/common/storage.h"
#include "cuda/engine/backend.h"
#include "cuda/engine/kv_plan.h"

namespace kvfid::engine {

// Device pointers; the engine does not own them. Matrices are [rows, cols] in the
// weight format, vectors FP32.
struct DeviceLayerWeights {
  const float* attn_norm = nullptr;                                  // [dim]
  const void *wq = nullptr, *wk = nullptr, *wv = nullptr;            // [q_dim|kv_dim, dim]
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;           // may be null (no bias)
  const float *q_norm = nullptr, *k_norm = nullptr;                  // [head_dim]; null without q/k norms
  const void* wo = nullptr;                                          // [dim, q_dim]
  const float* ffn_norm = nullptr;                                   // [dim]
  const float *post_attn_norm = nullptr, *post_ffn_norm = nullptr;   // [dim]; null without Gemma 2's post-norms
  const void *w1 = nullptr, *w3 = nullptr;                           // [hidden, dim]
  const void* w2 = nullptr;                                          // [dim, hidden]
  // Latent attention (config.h's LatentAttention), else null; wq is then [q_dim, q_in_dim].
  const void* wq_a = nullptr;           // [q_lora_rank, dim]; null without a low-rank query
  const float* q_a_norm = nullptr;      // [q_lora_rank]
  const void* wkv_a = nullptr;          // [kv_lora_rank + rope_dim, dim]
  const float* kv_a_norm = nullptr;     // [kv_lora_rank]
  const void* wkv_b = nullptr;          // [n_heads (nope + v_head_dim), kv_lora_rank]
};

struct DeviceWeights {
  const void* embedding = nullptr;  // [vocab, dim]
  std::vector<DeviceLayerWeights> layers;
  const float* final_norm = nullptr;  // [dim]
  const void* classifier = nullptr;   // [vocab, dim]
};

class CudaEngine {
 public:
  // Throws BackendUnavailable when no device is usable. `kv` lays out the KV cache
  // (kv_plan.h: the fast path, the tiered one, or an eviction's slots); `split` picks
  // each step's attention split size (split_keys.h); `latent` how latent attention reads
  // its rows (engine_options.h).
  CudaEngine(const ModelConfig& config, FloatFormat weights, const KvPlan& kv, const DeviceWeights& device_weights,
             SplitMode split = SplitMode::invariant, LatentPath latent = LatentPath::reconstruct);
  // The fast path's cache in one plain format.
  CudaEngine(const ModelConfig& config, FloatFormat weights, FloatFormat kv, const DeviceWeights& device_weights);
  ~CudaEngine();
  CudaEngine(const CudaEngine&) = delete;
  CudaEngine& operator=(const CudaEngine&) = delete;

  int add_sequence(int capacity);
  // A new sequence whose cache starts as a copy of source's first prefix_length tokens.
  int fork_sequence(int source, int prefix_length, int capacity);
  // Runs the step on the device; logits stay there until copy_logits.
  void forward(const std::vector<StepRow>& rows, bool want_taps, StepOutput* taps_out);
  void copy_logits(int rows, std::vector<float>& logits) const;
  // The log-softmax of the latest step's logits rows, computed on the device.
  void copy_logprobs(int rows, std::vector<float>& logprobs);
  // Layer `layer` of sequence `seq`'s first `length` tokens in cold form (backend.h).
  CacheValues cache_values(int seq, int layer, int length) const;
  // Every key an eviction policy has evicted from sequence `seq` (backend.h).
  std::vector<quant::EvictionEvent> evictions(int seq) const;
  // Decode attention alone for `rows` rows (one per sequence, each at the given
  // length), for timing; layer 0's cache.
  void attention_only(const std::vector<StepRow>& rows);

  struct State;  // device buffers and sequences (cuda_backend.cu)

 private:
  std::unique_ptr<State> s_;
};

// Throws BackendUnavailable with the reason when no CUDA device can be used.
void require_cuda_device();

}  // namespace kvfid::engine
