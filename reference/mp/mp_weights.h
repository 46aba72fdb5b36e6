#pragma once
// The model's weights as MPFR numbers, converted once per run. Every value is held
// exactly at 53 bits (a float64, possibly first rounded to a storage format by the
// caller): weights are operands, never results, so they need no working precision.
#include <functional>
#include <vector>

#include "reference/model/model.h"
#include "reference/mp/mp_array.h"

namespace kvfid {

inline constexpr mpfr_prec_t kWeightPrecisionBits = 53;  // float64 embeds exactly

struct MpMatrix {
  int rows = 0;
  int cols = 0;
  MpArray values;  // [rows, cols]
  mpfr_srcptr row(int r) const { return values[std::size_t(r) * cols]; }
};

struct MpLayerWeights {
  MpArray attn_norm;  // [dim]
  MpMatrix wq;        // [q_dim, dim]
  MpMatrix wk;        // [kv_dim, dim]
  MpMatrix wv;        // [kv_dim, dim]
  MpArray bq;         // [q_dim], empty unless qkv_bias
  MpArray bk;         // [kv_dim], empty unless qkv_bias
  MpArray bv;         // [kv_dim], empty unless qkv_bias
  MpMatrix wo;        // [dim, q_dim]
  MpArray ffn_norm;   // [dim]
  MpMatrix w1;        // [hidden, dim]
  MpMatrix w3;        // [hidden, dim]
  MpMatrix w2;        // [dim, hidden]
};

struct MpWeights {
  MpMatrix embedding;  // [vocab, dim]
  std::vector<MpLayerWeights> layers;
  MpArray final_norm;   // [dim]
  MpMatrix classifier;  // [vocab, dim]
};

// `store` maps each stored weight to the value the forward uses (identity for the
// golden, a rounding to the emulated weight format otherwise).
MpWeights to_mp_weights(const Model& model, const std::function<double(double)>& store);

// A float64 held exactly (constants such as eps, theta and dimensions).
MpArray mp_constant(double value);

}  // namespace kvfid
