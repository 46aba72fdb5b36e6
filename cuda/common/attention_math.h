#pragma once
// Op map (attention; docs/ops.md): reference reference/mp/attention.h, softmax.h | shared cuda/common/attention_math.h, portable_math.h | kernel attn_prefill_kernel, attn_decode_kernel, attn_combine_kernel | twin TwinBackend::attend | tests MpKernels.*, tests/cuda/properties/
// The per-row reduction of attention, shared by the prefill and decode kernels and the
// twin. A query row at position p attends to keys f..p, f = 0 or, on a sliding-window
// layer of window W, max(0, p - W + 1), cut into splits of S keys at boundaries at
// f + multiples of S. S is the step's (cuda/engine/split_keys.h): kSplit in
// the invariant split mode, so never derived from batch or context size; in the
// by-length mode a multiple of 32 up to kSplit chosen from the step's shape.
// Within split s (keys j0 = f + s*S .. j1 = min(j0+S, p+1)):
//   score_j = (sum_d q[d] k_j[d], fma in increasing d from +0) * scale, then
//             capped_score (Gemma 2's soft-cap; unchanged without one)
//   m_s     = max_j score_j            (warp butterfly per 32 keys, then warps in order)
//   p_j     = exp(score_j - m_s)
//   l_s     = sum_j p_j                (butterfly per 32 keys, padded with +0, then
//                                       warp sums added in increasing warp order)
//   acc_s[d]= sum_j p_j v_j[d]         (fma in increasing j from +0)
// Splits are folded in increasing order by fold_split() (the online-softmax update,
// which is also the flash-decoding combine), and out[d] = acc[d] / l.
// Prefill folds as it goes; decode computes splits in parallel and folds them after:
// the same operations on the same operands, hence the same bits.
#include "cuda/common/portable_math.h"
#include "cuda/common/storage.h"
#include "cuda/common/warp_reduce.h"

namespace kvfid::engine::num {

inline constexpr int kSplit = 256;                // keys per split at most (and in the invariant mode)
inline constexpr int kSplitWarps = kSplit / kWarp;

KVFID_HD int split_count(int keys, int split = kSplit) { return (keys + split - 1) / split; }

// The first key a query at position pos reads: 0, or the start of its window (window > 0).
KVFID_HD int first_key(int window, int pos) { return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0; }

template <FloatFormat F>
KVFID_HD float attn_score(const float* q, const typename Storage<F>::T* k, int head_dim, float scale) {
  float s = 0.0f;
  for (int d = 0; d < head_dim; ++d) s = fma(q[d], Storage<F>::load(k[d]), s);
  return s * scale;
}

// A scaled score soft-capped, cap * tanh(score / cap), when cap > 0 (Gemma 2), as
// reference/mp/attention_score.h finishes its scores.
KVFID_HD float capped_score(float score, float cap) { return cap > 0.0f ? soft_cap(score, cap) : score; }

// Running softmax state of one (row, head): the maximum and the sum; the weighted
// value sums live beside it, one per dimension.
struct SoftmaxStats {
  float m;
  float l;
};

// The factors by which the running state (m, l, acc) and a new split (ms, ls, acc_s)
// are scaled when folded: acc' = acc * a + acc_s * b, l' = l * a + ls * b.
struct FoldFactors {
  float a;
  float b;
  float m;  // the new maximum
};

KVFID_HD FoldFactors fold_factors(float m, float ms) {
  const float mn = max(m, ms);
  return {exp_portable(m - mn), exp_portable(ms - mn), mn};
}
KVFID_HD float fold_value(float running, float split, FoldFactors f) { return fma(running, f.a, split * f.b); }
// The running (m, l) after a split with sum split_l is folded in with factors f (those the
// split's values were folded with): the one stats fold of the twin and the kernels.
KVFID_HD SoftmaxStats fold_stats(SoftmaxStats running, float split_l, FoldFactors f) {
  return {f.m, fold_value(running.l, split_l, f)};
}

// The attention probability tap: p_j = exp(score_j - m) / l with the row's final m, l.
KVFID_HD float attn_prob(float score, SoftmaxStats final_stats) {
  return div(exp_portable(score - final_stats.m), final_stats.l);
}

}  // namespace kvfid::engine::num
