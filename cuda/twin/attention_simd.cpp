#include "cuda/twin/attention_simd.h"

#include "cuda/common/attention_math.h"
#include "cuda/twin/simd_x86.h"

namespace kvfid::engine::twin {

using ref::FloatFormat;

#if defined(__x86_64__)

bool attention_simd_available(int head_dim) { return head_dim % 8 == 0 && x86::simd_x86_available(); }

namespace {

constexpr int kValueVectors = 4;  // 32 dimensions' sums held in registers per pass over the keys

template <FloatFormat F>
__attribute__((target("avx2,fma,f16c"))) void scores_avx2(const float* q, const typename num::Storage<F>::T* const* keys,
                                                           int count, int hd, float scale, float* scores) {
  int i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 acc = _mm256_setzero_ps();  // lane j: key i+j's sum
    for (int d0 = 0; d0 < hd; d0 += 8) {
      __m256 r[8];  // r[j]: key i+j's dimensions d0..d0+7
      for (int j = 0; j < 8; ++j) r[j] = x86::load8<F>(keys[i + j] + d0);
      x86::transpose8(r);  // r[t]: dimension d0+t of the eight keys
      for (int t = 0; t < 8; ++t) acc = _mm256_fmadd_ps(_mm256_set1_ps(q[d0 + t]), r[t], acc);
    }
    _mm256_storeu_ps(scores + i, _mm256_mul_ps(acc, _mm256_set1_ps(scale)));
  }
  for (; i < count; ++i) scores[i] = num::attn_score<F>(q, keys[i], hd, scale);
}

template <FloatFormat F>
__attribute__((target("avx2,fma,f16c"))) void values_avx2(const float* probs,
                                                           const typename num::Storage<F>::T* const* values, int count,
                                                           int hd, float* out) {
  for (int d0 = 0; d0 < hd; d0 += 8 * kValueVectors) {
    const int vectors = (hd - d0) / 8 < kValueVectors ? (hd - d0) / 8 : kValueVectors;
    __m256 acc[kValueVectors];  // acc[v], lane t: dimension d0 + 8v + t
    for (__m256& a : acc) a = _mm256_setzero_ps();
    for (int i = 0; i < count; ++i) {
      const __m256 p = _mm256_set1_ps(probs[i]);
      for (int v = 0; v < vectors; ++v) acc[v] = _mm256_fmadd_ps(p, x86::load8<F>(values[i] + d0 + 8 * v), acc[v]);
    }
    for (int v = 0; v < vectors; ++v) _mm256_storeu_ps(out + d0 + 8 * v, acc[v]);
  }
}

}  // namespace

template <FloatFormat F>
void attn_scores_simd(const float* q, const typename num::Storage<F>::T* const* keys, int count, int head_dim,
                      float scale, float* scores) {
  scores_avx2<F>(q, keys, count, head_dim, scale, scores);
}

template <FloatFormat F>
void weighted_values_simd(const float* probs, const typename num::Storage<F>::T* const* values, int count,
                          int head_dim, float* out) {
  values_avx2<F>(probs, values, count, head_dim, out);
}

#else  // not x86-64: the scalar loops serve

bool attention_simd_available(int) { return false; }

template <FloatFormat F>
void attn_scores_simd(const float* q, const typename num::Storage<F>::T* const* keys, int count, int head_dim,
                      float scale, float* scores) {
  for (int i = 0; i < count; ++i) scores[i] = num::attn_score<F>(q, keys[i], head_dim, scale);
}

template <FloatFormat F>
void weighted_values_simd(const float* probs, const typename num::Storage<F>::T* const* values, int count,
                          int head_dim, float* out) {
  for (int d = 0; d < head_dim; ++d) {
    float a = 0.0f;
    for (int i = 0; i < count; ++i) a = num::fma(probs[i], num::Storage<F>::load(values[i][d]), a);
    out[d] = a;
  }
}

#endif

#define KVFID_INSTANTIATE(F)                                                                                      \
  template void attn_scores_simd<F>(const float*, const typename num::Storage<F>::T* const*, int, int, float,     \
                                    float*);                                                                      \
  template void weighted_values_simd<F>(const float*, const typename num::Storage<F>::T* const*, int, int, float*);
KVFID_INSTANTIATE(FloatFormat::f32)
KVFID_INSTANTIATE(FloatFormat::f16)
KVFID_INSTANTIATE(FloatFormat::bf16)
#undef KVFID_INSTANTIATE

}  // namespace kvfid::engine::twin
