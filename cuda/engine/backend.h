#pragma once
// What the twin and the CUDA engine both implement: sequences with their own KV cache,
// and a step that appends tokens to some of them. A step's rows are tokens (a prefill
// chunk contributes several rows of one sequence, a decode step one row per sequence);
// every row is computed with the same per-element reduction order, so the result of a
// row never depends on what else the step holds.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "cuda/engine/engine_options.h"
#include "reference/model/model.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

struct StepRow {
  int seq;    // sequence id from add_sequence
  int token;  // token id
  int pos;    // its position; rows of one sequence come in increasing position
};

// Per-layer intermediate values of a step, FP32, rows in step order. Under a rotated KV
// policy a backend gives q, k and v in the rotated basis (what the kernels multiply);
// Engine::step turns them back to the model's.
struct LayerTaps {
  std::vector<float> q;         // [rows, n_heads, head_dim] after bias and RoPE
  // k, v: as the cache holds them; under latent attention as the cached row reconstructs them.
  std::vector<float> k;         // [rows, n_kv_heads, head_dim]
  std::vector<float> v;         // [rows, n_kv_heads, v_head_dim]
  std::vector<float> stats;     // [rows, n_heads, 2] final softmax max m and sum l
  std::vector<float> attn_out;  // [rows, n_heads * v_head_dim]
  std::vector<float> out;       // [rows, dim]
  // Under a rotated policy, set by Engine::step: q as the kernels multiplied it (the
  // rotated basis), from which the attention's own probabilities are recomputed
  // (engine_forward.cpp); empty otherwise.
  std::vector<float> q_rotated;
  // Under an eviction policy (cuda/engine/eviction.h) or latent attention, set by the backend: the
  // probabilities each query weighted its keys by, [rows, n_heads, probs_width] by key
  // position (0 for a key it did not read; probs_width: the widest sequence of the step),
  // computed as engine_forward's attn.probs; empty otherwise.
  std::vector<float> probs;
  int probs_width = 0;
};

struct StepOutput {
  std::vector<float> logits;     // [rows, vocab]
  std::vector<LayerTaps> layers; // [n_layers] when taps were asked for, else empty
};

// One layer's cache of one sequence in cold form (in the rotated basis under a rotated
// policy; Engine::cache_values turns it back): the value each cached token's K and V
// stand for once quantized (decode() of its codes; the FP16 hot value for the keys of an
// incomplete KIVI group, which have no codes yet), whatever a query would read now.
struct CacheValues {
  std::vector<float> k;     // [n_kv_heads, length, head_dim]
  std::vector<float> v;     // [n_kv_heads, length, head_dim]
  // The hot forms (FP32 holding FP16) a query reads keys and values at or past its
  // cold_end in (kv_policy.h), the same shape; empty when no query reads one.
  std::vector<float> k_hot, v_hot;
  // Under an eviction: [n_kv_heads, length] 1 where the token is still cached (k and v
  // hold it), 0 where evicted (k and v hold zeros); empty otherwise.
  std::vector<std::uint8_t> cached;
  std::size_t k_bytes = 0;  // bytes the cache holds the keys in (KvPlan::held_bytes)
  std::size_t v_bytes = 0;
};

class EngineBackend {
 public:
  virtual ~EngineBackend() = default;
  // A new empty sequence able to hold `capacity` tokens; returns its id.
  virtual int add_sequence(int capacity) = 0;
  // A new sequence of `capacity` tokens whose cache starts as a copy of the first
  // `prefix_length` cached tokens of `source` (prefix reuse); returns its id. The
  // caller (Engine) has checked the ids and lengths, and refuses a fork under an
  // eviction policy.
  virtual int fork_sequence(int source, int prefix_length, int capacity) = 0;
  virtual void step(const std::vector<StepRow>& rows, bool want_taps, StepOutput& out) = 0;
  // The first `length` tokens of layer `layer` of sequence `seq` (ids checked by Engine).
  virtual CacheValues cache_values(int seq, int layer, int length) = 0;
  // logprobs [rows, vocab]: the log-softmax (cuda/common/log_softmax.h) of each logits
  // row of the latest step, whose output is `last` (the twin reads last.logits; the GPU
  // its device copy of them, the same bits).
  virtual void log_softmax(const StepOutput& last, std::vector<float>& logprobs) = 0;
  // Every key an eviction policy has evicted from sequence `seq` (eviction_spec.h's
  // events: layer, KV head, then position order); none without one.
  virtual std::vector<quant::EvictionEvent> evictions(int) { return {}; }
};

std::unique_ptr<EngineBackend> make_twin_backend(const Model& model, const EngineOptions& options);
// Throws BackendUnavailable without a CUDA build or a device.
std::unique_ptr<EngineBackend> make_cuda_backend(const Model& model, const EngineOptions& options);

}  // namespace kvfid::engine
