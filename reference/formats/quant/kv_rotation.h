#pragma once
// Op map (KV rotation; docs/ops.md): reference reference/mp/kv_rotate.h (the dense
// matrix, exactly or as the plain product) | shared rotate_head/unrotate_head below |
// kernel rotate_heads_kernel | twin TwinBackend::run | tests KvRotation*, MpKvRotate*, QuantGate*rot*
//
// A rotation of every KV head's vectors before they are quantized, the `+rot=` part of a
// KV policy (kv_policy.h). Keys: the query head is rotated by the same matrix R, so the
// score R q . R k is q . k in exact arithmetic (R orthogonal). Values: stored rotated,
// and the attention output, a weighted sum of them, rotated back by R^T (llama.cpp's
// way). What a codec sees is R k and R v: a rotation spreads an outlier channel over
// every coordinate, which is what the scaled block formats need.
//
//   hadamard           R = s H           H the Sylvester Walsh-Hadamard matrix,
//   hadamard:SEED      R = s H D         H[i][j] = (-1)^popcount(i & j); D = diag(+-1) seeded;
//                                        s = fl32(1/sqrt(d)); d a power of two
//   orthogonal:SEED    R = fl32(Q)       Q from the Gram-Schmidt QR of a seeded Gaussian
//                                        d x d matrix (Haar-distributed); any d
//
// What "R" is, exactly: the matrix with float32 entries the engine multiplies by (s H D
// has entries +-s). The reference applies that matrix and its transpose exactly, so the
// golden of a rotated policy is the exact value of what the engine approximates. R is
// orthogonal exactly when d is a power of 4 under Hadamard (s = 2^-k); otherwise R^T R
// = I + E with |E| of the order of FP32's 2^-24 (rotation_orthogonality_error measures
// it), far below any storage format's error.
//
// The engine's order of operations (rotate_head, unrotate_head: one implementation for
// the twin and the kernels, FP32, no contraction):
//   Hadamard rotate    x <- D x (exact sign flips); butterfly stages h = 1, 2, 4, ..., d/2,
//                      pairs (j, j + h) -> (a + b, a - b); then x <- s x
//   Hadamard unrotate  butterfly; x <- s x; x <- D x                       (R^T = D H s)
//   orthogonal         y_i = sum_j R[i][j] x_j  (unrotate: R[j][i]), fma in j order
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/numeric/hd.h"
#include "reference/numeric/ieee.h"

namespace kvfid::ref::quant {

enum class RotationKind { none, hadamard, orthogonal };

// The `+rot=` part as parsed: a kind and, optionally (hadamard) or necessarily
// (orthogonal), a seed.
struct RotationSpec {
  RotationKind kind = RotationKind::none;
  std::optional<std::uint64_t> seed;
};

// "hadamard", "hadamard:SEED" or "orthogonal:SEED" as RotationSpec; the text of an
// unrotated spec is "".
std::string to_string(const RotationSpec& spec);

// A rotation for one head_dim, as data both the reference and the engine read.
struct Rotation {
  RotationKind kind = RotationKind::none;
  int dim = 0;
  float scale = 0;            // hadamard: s = fl32(1/sqrt(dim))
  std::vector<float> signs;   // hadamard: [dim] the diagonal of D, +-1 (all +1 without a seed)
  std::vector<float> matrix;  // orthogonal: [dim, dim] R row-major
  bool active() const { return kind != RotationKind::none; }
};

// Largest head_dim a rotation accepts: the engine rotates a head in one thread with a
// [dim] scratch (rotate_heads_kernel), and no model kvfid targets has a larger head.
inline constexpr int kMaxRotationDim = 256;

// The rotation `spec` names for heads of `head_dim`. Throws InputError(source, ...) for
// a Hadamard rotation of a head_dim that is not a power of two, or a head_dim above
// kMaxRotationDim.
Rotation make_rotation(const RotationSpec& spec, int head_dim, const std::string& source);

// R as a dense [dim, dim] row-major matrix of its float32 entries (for the reference and
// the tests; identity for an inactive rotation).
std::vector<float> dense_rotation(const Rotation& r);

// max_ij |(R^T R - I)_ij|, in float64 from the float32 entries.
double rotation_orthogonality_error(const Rotation& r);

// x [vectors, dim] from the rotated basis back to the model's: x <- R^T x per vector, in
// float64, rounded once to FP32. How the engine reports what its cache holds (taps,
// cache values) in the basis every other tap and the golden use. R's dense matrix is
// built once, at construction; an inactive rotation leaves x as it is.
class ModelBasis {
 public:
  explicit ModelBasis(const Rotation& r);
  bool active() const { return !dense_.empty(); }
  void apply(float* x, std::size_t vectors) const;

 private:
  int dim_ = 0;
  std::vector<float> dense_;  // [dim, dim] R, row-major; empty when inactive
};

// What a kernel reads of a Rotation.
struct RotationView {
  RotationKind kind = RotationKind::none;
  int dim = 0;
  float scale = 0;
  const float* signs = nullptr;   // [dim]
  const float* matrix = nullptr;  // [dim, dim]
};

inline RotationView view_of(const Rotation& r) {
  return {r.kind, r.dim, r.scale, r.signs.empty() ? nullptr : r.signs.data(),
          r.matrix.empty() ? nullptr : r.matrix.data()};
}

namespace detail {
KVFID_HD void butterfly(float* x, int d) {
  for (int h = 1; h < d; h <<= 1)
    for (int i = 0; i < d; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}
// y = M x (transposed: y = M^T x), one fma chain per output in j order; tmp: [d].
KVFID_HD void dense_apply(const float* m, bool transposed, float* x, float* tmp, int d) {
  for (int i = 0; i < d; ++i) {
    float acc = 0.0f;
    for (int j = 0; j < d; ++j) acc = num::fma(transposed ? m[j * d + i] : m[i * d + j], x[j], acc);
    tmp[i] = acc;
  }
  for (int i = 0; i < d; ++i) x[i] = tmp[i];
}
}  // namespace detail

// x [dim] <- R x; tmp: [dim] scratch (orthogonal only).
KVFID_HD void rotate_head(const RotationView& r, float* x, float* tmp) {
  if (r.kind == RotationKind::hadamard) {
    for (int i = 0; i < r.dim; ++i) x[i] = x[i] * r.signs[i];  // +-1: exact
    detail::butterfly(x, r.dim);
    for (int i = 0; i < r.dim; ++i) x[i] = x[i] * r.scale;
  } else if (r.kind == RotationKind::orthogonal) {
    detail::dense_apply(r.matrix, false, x, tmp, r.dim);
  }
}

// x [dim] <- R^T x; tmp: [dim] scratch (orthogonal only).
KVFID_HD void unrotate_head(const RotationView& r, float* x, float* tmp) {
  if (r.kind == RotationKind::hadamard) {
    detail::butterfly(x, r.dim);
    for (int i = 0; i < r.dim; ++i) x[i] = x[i] * r.scale * r.signs[i];  // the sign: exact
  } else if (r.kind == RotationKind::orthogonal) {
    detail::dense_apply(r.matrix, true, x, tmp, r.dim);
  }
}

}  // namespace kvfid::ref::quant
