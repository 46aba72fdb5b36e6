#pragma once
// The two inner loops of the twin's attention (cuda/common/attention_math.h's order),
// eight at a time on AVX2 + FMA (+ F16C for an FP16 cache), with the same bits:
//   scores: score_j = (sum_d fma(q[d], k_j[d], s), d increasing from +0) * scale. SIMD
//           lane i carries key j+i's own sum: an 8x8 transpose (data movement) lines up
//           dimension d of eight keys, and each vfmadd is the next fma of every one of
//           them. Keys past the last multiple of eight: attn_score itself.
//   values: acc[d] = sum_j fma(p_j, v_j[d], acc), j increasing from +0. SIMD lane i
//           carries dimension d+i's own sum, advanced key by key.
// No sum is split, reordered or combined with another; only explicit fused
// multiply-adds and the same final multiply by scale (tests/cuda/twin/
// attention_simd_test.cpp compares against the scalar loops bit for bit).
#include "cuda/common/storage.h"

namespace kvfid::engine::twin {
using ref::FloatFormat;  // the numeric core's format enum

// True when this CPU runs the SIMD paths and head_dim is a multiple of 8.
bool attention_simd_available(int head_dim);

// scores[i] = attn_score<F>(q, keys[i], head_dim, scale), i < count.
template <FloatFormat F>
void attn_scores_simd(const float* q, const typename num::Storage<F>::T* const* keys, int count, int head_dim,
                      float scale, float* scores);

// out[d] = sum_i fma(probs[i], values[i][d], .) over i < count in increasing i, from +0.
template <FloatFormat F>
void weighted_values_simd(const float* probs, const typename num::Storage<F>::T* const* values, int count,
                          int head_dim, float* out);

}  // namespace kvfid::engine::twin
