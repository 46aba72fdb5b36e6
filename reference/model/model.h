#pragma once
// A loaded model. Every value is held as float64: F32, F16 and BF16 all embed in
// float64 exactly, so the model here is the stored model, bit for bit.
#include <string>
#include <vector>

#include "reference/model/config.h"

namespace kvfid::ref {

// Row-major [rows, cols]; a projection computes y = W x, so rows = out, cols = in.
struct Matrix {
  int rows = 0;
  int cols = 0;
  std::vector<double> data;  // [rows, cols]

  Matrix() = default;
  Matrix(int r, int c) : rows(r), cols(c), data(std::size_t(r) * c, 0.0) {}
  double& at(int r, int c) { return data[std::size_t(r) * cols + c]; }
  double at(int r, int c) const { return data[std::size_t(r) * cols + c]; }
  const double* row(int r) const { return data.data() + std::size_t(r) * cols; }
};

struct LayerWeights {
  std::vector<double> attn_norm;  // [dim]
  Matrix wq;                      // [n_heads*head_dim, dim]
  Matrix wk;                      // [n_kv_heads*head_dim, dim]
  Matrix wv;                      // [n_kv_heads*head_dim, dim]
  std::vector<double> bq;         // [n_heads*head_dim], empty unless qkv_bias
  std::vector<double> bk;         // [n_kv_heads*head_dim], empty unless qkv_bias
  std::vector<double> bv;         // [n_kv_heads*head_dim], empty unless qkv_bias
  Matrix wo;                      // [dim, n_heads*head_dim]
  std::vector<double> ffn_norm;   // [dim]
  Matrix w1;                      // [hidden, dim]  gate: silu(w1 x)
  Matrix w3;                      // [hidden, dim]  up
  Matrix w2;                      // [dim, hidden]  down
};

struct Model {
  ModelConfig config;
  Matrix embedding;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  std::vector<double> final_norm;  // [dim]
  Matrix classifier;               // [vocab, dim]; a copy of embedding when tied
  std::string source;              // path it was loaded from
  std::string sha256;              // of the file holding the weights
};

}  // namespace kvfid::ref
