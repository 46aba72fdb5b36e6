#pragma once
// Op map (projection; docs/ops.md): reference reference/mp/projection.h | shared cuda/common/row_dot.h, warp_reduce.h | kernel matvec_kernel | twin matvec() | tests EngineWarpReduce.*, EngineTwinReference.*
// The reduction order of every matrix-vector product (projections, classifier) and of
// the RMSNorm sum of squares: one warp per output element.
//   Lane assignment: element k belongs to lane (k / kVec) % 32, so a lane reads kVec
//   consecutive elements (16 bytes of FP16) per step and a warp 256 per step.
//   Each lane accumulates its elements with fma in increasing k, from +0.
//   The 32 lane sums are then reduced by the warp butterfly (warp_reduce.h).
// Host and device follow this order exactly; nothing depends on how many tokens or
// sequences are processed together.
#include "cuda/common/storage.h"
#include "cuda/common/warp_reduce.h"

namespace kvfid::engine::num {

inline constexpr int kVec = 8;                 // consecutive elements per lane per step
inline constexpr int kRowStep = kVec * kWarp;  // elements a warp covers per step

// One lane's partial sum: its elements in increasing k, fma from +0. The GPU warp
// calls it per lane; the host calls it for lanes 0..31 and then models the butterfly.
template <FloatFormat F>
KVFID_HD float row_dot_lane(const typename Storage<F>::T* w, const float* x, int n, int lane) {
  float acc = 0.0f;
  for (int base = lane * kVec; base < n; base += kRowStep) {
    const int end = base + kVec < n ? base + kVec : n;
    for (int k = base; k < end; ++k) acc = fma(Storage<F>::load(w[k]), x[k], acc);
  }
  return acc;
}

// Host: sum_k w[k] * x[k] in the engine's order.
template <FloatFormat F>
inline float row_dot_host(const typename Storage<F>::T* w, const float* x, int n) {
  float lanes[kWarp];
  for (int lane = 0; lane < kWarp; ++lane) lanes[lane] = row_dot_lane<F>(w, x, n, lane);
  return butterfly_host<Add>(lanes);
}

// Host: sum_k x[k]^2 in the same order (RMSNorm).
inline float sum_squares_host(const float* x, int n) { return row_dot_host<FloatFormat::f32>(x, x, n); }

// RMSNorm of one row: y = (x * (1 / sqrt(mean(x^2) + eps))) * w, each step rounded.
KVFID_HD float rms_inverse(float sum_squares, int n, float eps) {
  return div(1.0f, sqrt(div(sum_squares, float(n)) + eps));
}
KVFID_HD float rms_apply(float x, float inv, float w) { return (x * inv) * w; }

}  // namespace kvfid::engine::num
