#pragma once
// Op map (log-softmax; docs/ops.md): reference none (derived bound in tests/cuda/common/log_softmax_reference.h) | shared cuda/common/log_softmax.h | kernel log_softmax_kernel | twin TwinBackend::log_softmax | tests EngineLogSoftmax.*
// Log-softmax of one row of logits, lp_k = x_k - max - log(sum_j exp(x_j - max)), in the
// one order the CUDA kernel and the twin share. A row belongs to a block of
// kLogSoftmaxThreads threads; thread t owns elements k = t, t + kLogSoftmaxThreads, ...
// (consecutive threads read consecutive logits: coalesced).
//   max:  per thread, max over its elements in increasing k from -inf; warp butterfly
//         (Max); the warp maxima folded in increasing warp order. Exact whatever the
//         order, but fixed anyway.
//   sum:  per thread, sum of exp(x_k - max) in increasing k from +0; warp butterfly
//         (Add); the warp sums added in increasing warp order.
//   out:  lp_k = (x_k - max) - log(sum), each step rounded.
// Threads past the row's end hold the identities (-inf for max, +0 for sum), as idle
// GPU threads do.
#include "cuda/common/portable_math.h"
#include "cuda/common/warp_reduce.h"

namespace kvfid::engine::num {

inline constexpr int kLogSoftmaxThreads = 256;
inline constexpr int kLogSoftmaxWarps = kLogSoftmaxThreads / kWarp;

KVFID_HD float log_softmax_thread_max(const float* x, int n, int t) {
  float m = -infinity();
  for (int k = t; k < n; k += kLogSoftmaxThreads) m = max(m, x[k]);
  return m;
}

KVFID_HD float log_softmax_thread_sum(const float* x, int n, int t, float row_max) {
  float s = 0.0f;
  for (int k = t; k < n; k += kLogSoftmaxThreads) s = s + exp_portable(x[k] - row_max);
  return s;
}

// The warp results [kLogSoftmaxWarps] folded in increasing warp order.
template <class Op>
KVFID_HD float fold_warps(const float* warp_values, Op op = Op()) {
  float v = warp_values[0];
  for (int w = 1; w < kLogSoftmaxWarps; ++w) v = op(v, warp_values[w]);
  return v;
}

KVFID_HD float log_softmax_value(float x, float row_max, float log_sum) { return (x - row_max) - log_sum; }

// Host: out[0..n) = log-softmax of x[0..n) in the kernel's order.
inline void log_softmax_host(const float* x, int n, float* out) {
  float lanes[kWarp], warps[kLogSoftmaxWarps];
  for (int w = 0; w < kLogSoftmaxWarps; ++w) {
    for (int i = 0; i < kWarp; ++i) lanes[i] = log_softmax_thread_max(x, n, w * kWarp + i);
    warps[w] = butterfly_host<Max>(lanes);
  }
  const float row_max = fold_warps<Max>(warps);
  for (int w = 0; w < kLogSoftmaxWarps; ++w) {
    for (int i = 0; i < kWarp; ++i) lanes[i] = log_softmax_thread_sum(x, n, w * kWarp + i, row_max);
    warps[w] = butterfly_host<Add>(lanes);
  }
  const float log_sum = log_portable(fold_warps<Add>(warps));
  for (int k = 0; k < n; ++k) out[k] = log_softmax_value(x[k], row_max, log_sum);
}

}  // namespace kvfid::engine::num
