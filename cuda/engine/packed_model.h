#pragma once
// The model converted once to the engine's storage: matrices in the chosen weight
// format (round to nearest even from the exact float64 values), norm weights and
// biases in FP32 (small vectors kept at FP32, as llama.cpp and vLLM do).
#include <cstdint>
#include <vector>

#include "cuda/common/storage.h"
#include "reference/formats/float_format.h"
#include "reference/model/model.h"

namespace kvfid {

num::Fmt to_fmt(FloatFormat f);

struct PackedMatrix {
  int rows = 0;
  int cols = 0;
  std::vector<std::uint8_t> bytes;  // [rows, cols] elements of the weight format

  template <num::Fmt F>
  const typename num::Storage<F>::T* data() const {
    return reinterpret_cast<const typename num::Storage<F>::T*>(bytes.data());
  }
};

struct PackedLayer {
  std::vector<float> attn_norm;   // [dim]
  PackedMatrix wq, wk, wv;        // [q_dim, dim], [kv_dim, dim], [kv_dim, dim]
  std::vector<float> bq, bk, bv;  // [q_dim], [kv_dim], [kv_dim]; empty without bias
  PackedMatrix wo;                // [dim, q_dim]
  std::vector<float> ffn_norm;    // [dim]
  PackedMatrix w1, w3;            // [hidden, dim]
  PackedMatrix w2;                // [dim, hidden]
};

struct PackedModel {
  ModelConfig config;
  num::Fmt weights = num::Fmt::f32;
  PackedMatrix embedding;  // [vocab, dim]
  std::vector<PackedLayer> layers;
  std::vector<float> final_norm;  // [dim]
  PackedMatrix classifier;        // [vocab, dim]
  float eps = 0;                  // rms_norm_eps rounded to FP32
  float attn_scale = 0;           // 1/sqrt(head_dim) computed in double, rounded to FP32
};

PackedMatrix pack_matrix(const Matrix& m, FloatFormat format);
std::vector<float> pack_vector(const std::vector<double>& v);  // RNE to FP32
PackedModel pack_model(const Model& model, FloatFormat weights);
// 1/sqrt(head_dim) computed in float64 and rounded once to FP32.
float attention_scale(const ModelConfig& config);

}  // namespace kvfid
