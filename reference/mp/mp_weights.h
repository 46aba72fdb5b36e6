#pragma once
// The model's weights as the MPFR forward reads them. Matrices stay views of the stored
// weights (reference/model/matrix.h) and are decoded row by row where a projection uses
// them (projection.h); only the small vectors -- norm weights and biases -- are held as
// MPFR numbers, converted once per run. Every value is exact (a float64; a forward of a
// stored model passes stored_model(...) from reference/model/weight_storage.h), at 53
// bits or more: the golden uses its working precision because MPFR's fma is fastest
// when every operand has the same precision.
#include <vector>

#include "reference/model/model.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

inline constexpr mpfr_prec_t kWeightPrecisionBits = 53;  // float64 embeds exactly

// The precision weights are held at for a forward working at `working_precision`.
inline mpfr_prec_t weight_precision_for(mpfr_prec_t working_precision) {
  return working_precision > kWeightPrecisionBits ? working_precision : kWeightPrecisionBits;
}

// A matrix as the forward reads it: the view, and the precision its rows are decoded to.
struct MpMatrixRef {
  const Matrix& matrix;
  mpfr_prec_t precision;
};

struct MpLayerVectors {
  MpArray attn_norm;  // [dim]
  MpArray bq;         // [q_dim], empty unless qkv_bias
  MpArray bk;         // [kv_dim], empty unless qkv_bias
  MpArray bv;         // [kv_dim], empty unless qkv_bias
  MpArray q_norm;     // [head_dim], empty unless qk_norm
  MpArray k_norm;     // [head_dim], empty unless qk_norm
  MpArray ffn_norm;   // [dim]
  MpArray post_attn_norm, post_ffn_norm;  // [dim] each, empty unless sandwich_norms
  MpArray q_a_norm;   // [q_lora_rank], empty without MLA's low-rank query
  MpArray kv_a_norm;  // [kv_lora_rank], empty without MLA
};

// Borrows `model`'s matrices: the Model must outlive it.
struct MpWeights {
  const Model* model = nullptr;
  mpfr_prec_t precision = kWeightPrecisionBits;
  std::vector<MpLayerVectors> layers;
  MpArray final_norm;  // [dim]
  // Every RMSNorm gain above is the gain the norm multiplies by: 1 + w under
  // norm_unit_offset (Gemma), held exactly (at the precision the sum needs).

  // One of model's matrices, read at this precision.
  MpMatrixRef read(const Matrix& m) const { return {m, precision}; }
};

// Every vector exactly, at `precision` >= 53 (a 1 + w gain at more where its bits need
// it); the matrices by reference.
MpWeights to_mp_weights(const Model& model, mpfr_prec_t precision);

// A float64 held exactly (constants such as eps, theta and dimensions).
MpArray mp_constant(double value);

}  // namespace kvfid::ref
