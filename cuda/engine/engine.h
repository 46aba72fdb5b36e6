#pragma once
// The engine as a library: sequences, each with its own KV cache, advanced by steps
// that append tokens to any subset of them (prefill chunks, decode tokens, or both).
#include <memory>
#include <vector>

#include "cuda/engine/backend.h"
#include "reference/formats/quant/kv_rotation.h"

namespace kvfid::engine {

struct SequenceInput {
  int seq;                  // id from add_sequence
  std::vector<int> tokens;  // appended at the sequence's current length
};

class Engine {
 public:
  Engine(const Model& model, const EngineOptions& options);

  int add_sequence(int capacity);
  // A new sequence holding a copy of the first `prefix_length` cached tokens of
  // `source` (a shared prompt prefix computed once); it continues at that length,
  // independent of the source. Throws InputError for an unknown source, a prefix
  // longer than the source's length or than `capacity`.
  int fork_sequence(int source, int prefix_length, int capacity);
  int length(int seq) const { return lengths_.at(seq); }
  const ModelConfig& config() const { return config_; }

  // One step over all inputs; out.logits rows follow the inputs' tokens in order. Under
  // a rotated KV policy (kv_rotation.h) the backends compute q, K and V in the rotated
  // basis; the taps and cache values are given back in the model's (quant::ModelBasis), as
  // every other tap and the golden are (and q as computed in LayerTaps::q_rotated).
  // Throws InputError for an unknown sequence, a bad token or an overfull cache.
  const StepOutput& step(const std::vector<SequenceInput>& inputs, bool want_taps = false);
  // Log-probabilities of the latest step's rows, [rows, vocab]: the log-softmax of each
  // logits row, computed by the backend (on the GPU for the CUDA engine) when first
  // asked for after a step.
  const std::vector<float>& logprobs();
  // Layer `layer` of sequence `seq`'s cache in cold form, every cached token (backend.h),
  // for the quantization report: in the model's basis, or (Basis::rotated) as the
  // kernels read it under a rotated policy. Throws InputError for an unknown sequence or layer.
  enum class Basis { model, rotated };
  CacheValues cache_values(int seq, int layer, Basis basis = Basis::model);
  // Under an eviction policy (eviction.h): every key evicted from sequence `seq` so far,
  // including after its latest query; none otherwise. InputError for an unknown sequence.
  std::vector<quant::EvictionEvent> evictions(int seq) const;

 private:
  ModelConfig config_;
  quant::ModelBasis model_basis_;  // the KV policy's rotation, back
  std::unique_ptr<EngineBackend> backend_;
  bool evicting_;  // the KV policy evicts: no forks (a cache no longer holds its prefix as it was)
  std::vector<int> lengths_;
  std::vector<StepRow> rows_;
  StepOutput out_;
  std::vector<float> logprobs_;  // [rows, vocab] of the latest step once asked for
  bool logprobs_current_ = false;
};

}  // namespace kvfid::engine
