#pragma once
// The model's weights as MPFR numbers, converted once per run. Every value is held
// exactly (a float64; a forward of a stored model passes stored_model(...) from
// reference/model/weight_storage.h), at 53 bits or more: the golden converts them at its working precision because MPFR's
// fma is fastest when every operand has the same precision.
#include <vector>

#include "reference/model/model.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

inline constexpr mpfr_prec_t kWeightPrecisionBits = 53;  // float64 embeds exactly

// The precision weights are held at for a forward working at `working_precision`.
inline mpfr_prec_t weight_precision_for(mpfr_prec_t working_precision) {
  return working_precision > kWeightPrecisionBits ? working_precision : kWeightPrecisionBits;
}

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

// Every weight exactly, at `precision` >= 53.
MpWeights to_mp_weights(const Model& model, mpfr_prec_t precision);

// A float64 held exactly (constants such as eps, theta and dimensions).
MpArray mp_constant(double value);

}  // namespace kvfid::ref
