#pragma once
// row_dot_host (cuda/common/row_dot.h) on AVX2 + FMA, for the twin's matvec: the same
// bits, eight warp lanes per SIMD register.
//
// Why the bits are the same: in the warp model, lane L's partial sum is
// acc_L = fma(w[k], x[k], acc_L) over its elements k = s*kRowStep + L*kVec + t in
// increasing step s, then t = 0..kVec-1, from +0. A SIMD register here holds
// acc_L for eight consecutive lanes L = 8g..8g+7, and each vfmadd performs, in every
// SIMD lane, the one fma its warp lane does next (same operands, one rounding, as
// fmaf): the 8x8 transpose (pure data movement) lines element (s, L, t) of eight lanes
// up in one register, for t in increasing order. No lane's sum is ever split or
// reordered; SIMD lanes never combine. The last, partial step runs per lane in
// scalar fmaf, continuing each lane's sum in its order, and the 32 lane sums go
// through the same butterfly_host. The loads give Storage<F>::load's bits
// (simd_x86.h: BF16 the integer shift of convert.h, FP16 the exact F16C conversion).
// Explicit fused multiply-adds only: -ffp-contract=off still holds for every other
// expression (the engine's unit tests compare against row_dot_host bit for bit).
#include <cstdint>

#include "cuda/common/storage.h"

namespace kvfid::engine::twin {
using ref::FloatFormat;  // the numeric core's format enum

// True when this CPU runs the AVX2 + FMA path (checked once).
bool row_dot_simd_available();

// xt receives x [n] in lane-major order for its full steps: xt[s][t][L] =
// x[s*kRowStep + L*kVec + t] for s < n / kRowStep, [n / kRowStep * kRowStep] floats.
void lane_major(const float* x, int n, float* xt);

// sum_k w[k] * x[k] in row_dot_host's order; xt is lane_major(x). Only where
// row_dot_simd_available().
template <FloatFormat F>
float row_dot_simd(const typename num::Storage<F>::T* w, const float* x, const float* xt, int n);

}  // namespace kvfid::engine::twin
