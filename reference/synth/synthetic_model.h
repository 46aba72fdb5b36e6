#pragma once
// Deterministic synthetic models whose weights look like trained ones where it
// matters for numerics: a few outlier channels in the K projection (they dominate
// q.k and make K quantization hard, as KIVI observed) and a few residual dimensions
// of large magnitude ("massive activations"), on top of Gaussian-like noise.
#include <cstdint>
#include <string>
#include <vector>

#include "reference/model/model.h"
#include "reference/model/weight_role.h"

namespace kvfid::ref {

// Storage precision of the generated values: the model on disk is exactly this.
enum class SynthPrecision { f32, f16, bf16 };

struct SynthOptions {
  SynthPrecision precision = SynthPrecision::f32;
  int k_outlier_channels = 2;      // per KV head: head_dim channels whose wk rows are scaled
  double k_outlier_scale = 8.0;    // their scale relative to the other channels
  int massive_dims = 2;            // residual dimensions with large magnitude
  double massive_scale = 16.0;     // their embedding scale relative to the others
  // Layers of the full shape a reduced variant is cut from (0: the config's own). The
  // final norm's and the classifier's random streams are keyed by it, so a variant with
  // fewer layers or a smaller vocabulary is exactly a truncation of the full model.
  int layout_layers = 0;
};

// The weights of one synthetic model, produced tensor by tensor and row by row on
// demand: every element is a pure function of (seed, tensor, index), so any slice can
// be generated alone, by any thread, without the rest of the model in memory.
// Portable: only integer hashing and IEEE + - * /, so every platform generates the
// same bits for the same seed.
class SyntheticWeights {
 public:
  SyntheticWeights(const ModelConfig& config, std::uint64_t seed, const SynthOptions& options = {});

  // Rows [begin, end) of a tensor into out [end - begin, cols], already rounded to the
  // storage precision. A 1-D tensor (norm gains, biases) is one row. `layer` is ignored
  // for the embedding, the final norm and the classifier.
  void rows(WeightRole role, int layer, std::int64_t begin, std::int64_t end, double* out) const;

  const ModelConfig& config() const { return config_; }

 private:
  std::uint64_t stream_base(WeightRole role, int layer) const;
  std::int64_t columns(WeightRole role) const;

  ModelConfig config_;
  std::uint64_t seed_;
  SynthOptions options_;
};

// The whole model in memory (small shapes; large ones are streamed to disk instead).
Model make_synthetic_model(const ModelConfig& config, std::uint64_t seed, const SynthOptions& options = {});

}  // namespace kvfid::ref
