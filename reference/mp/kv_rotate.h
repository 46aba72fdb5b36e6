#pragma once
// Op map (KV rotation; docs/ops.md): reference reference/mp/kv_rotate.h (this) | shared
// reference/formats/quant/kv_rotation.h rotate_head, unrotate_head | kernel
// rotate_heads_kernel | twin TwinBackend::run | tests KvRotation*, MpKvRotate*, QuantGate*rot*
//
// A rotated KV policy in the reference forwards (mp_forward.cpp, native_forward.cpp),
// the engine's algorithm with exact (or, emulated, plain) arithmetic: q, K and V are
// rotated after RoPE, the cache stores the forms of R K and R V (kv_store.h), the
// attention runs in the rotated basis, and its output is rotated back. A rotation is a
// projection by the d x d matrix of R's float32 entries over rows of head_dim, so
// projection.h's rules give it: exact() sums each output exactly and rounds it once
// (with radii), ieee() is the plain algorithm (column order, each operation rounded --
// a dense product, not the engine's butterfly: the baseline of a rotation is the
// straightforward way to compute it).
#include "reference/formats/quant/kv_rotation.h"
#include "reference/model/matrix.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// R (or R^T) as a float64-owned Matrix [dim, dim] of its float32 entries.
Matrix rotation_matrix(const quant::Rotation& r, bool transposed);

// x [rows, dim] <- R x per row (R^T x when `transposed`) in `arith`; radii (or null)
// replaced by the result's (projection.h; exact() only).
void rotate_rows(MpArray& x, const quant::Rotation& r, bool transposed, int rows, const MpArith& arith, int threads,
                 MpArray* radii = nullptr);

// What the cache holds ([rows, dim] in the rotated basis, exact) in the model's basis:
// R^T x, each value exact-summed and rounded once at x's precision -- the k and v taps,
// which every forward (golden, emulated, native) reports alike. radii (or null): set to
// the result's (x is exact: its roundings).
MpArray to_model_basis(const MpArray& x, const quant::Rotation& r, int rows, int threads, MpArray* radii = nullptr);

}  // namespace kvfid::ref
