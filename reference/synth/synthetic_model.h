#pragma once
// Deterministic synthetic models whose weights look like trained ones where it
// matters for numerics: a few outlier channels in the K projection (they dominate
// q.k and make K quantization hard, as KIVI observed) and a few residual dimensions
// of large magnitude ("massive activations"), on top of Gaussian-like noise.
#include <cstdint>
#include <string>
#include <vector>

#include "reference/model/model.h"

namespace kvfid::ref {

// Storage precision of the generated values: the model on disk is exactly this.
enum class SynthPrecision { f32, f16, bf16 };

struct SynthOptions {
  SynthPrecision precision = SynthPrecision::f32;
  int k_outlier_channels = 2;      // per KV head: head_dim channels whose wk rows are scaled
  double k_outlier_scale = 8.0;    // their scale relative to the other channels
  int massive_dims = 2;            // residual dimensions with large magnitude
  double massive_scale = 16.0;     // their embedding scale relative to the others
};

// Portable: only integer hashing and IEEE + - * /, so every platform generates the
// same bits for the same seed.
Model make_synthetic_model(const ModelConfig& config, std::uint64_t seed, const SynthOptions& options = {});

// Named shapes of `kvfid fixture --shape`: tiny-llama (MHA), tiny-qwen2 (7:1 GQA, q/k/v
// bias, theta 1e6, eps 1e-6, rotate-half), tiny-mqa (one KV head).
std::vector<std::string> synthetic_shape_names();
// Throws InputError("--shape", ...) for an unknown name.
ModelConfig synthetic_shape(const std::string& name);

}  // namespace kvfid::ref
