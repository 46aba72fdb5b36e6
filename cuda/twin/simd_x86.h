#pragma once
// AVX2 building blocks of the twin's SIMD paths (row_dot_simd.cpp,
// attention_simd.cpp), x86-64 only; every function is compiled for AVX2 + FMA + F16C
// and called only where simd_x86_available(). Loads and the transpose are pure data
// movement and exact conversions; the arithmetic stays in the callers, as explicit
// fused multiply-adds.
#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>

#include "reference/numeric/convert.h"
#include "cuda/common/storage.h"

#define KVFID_SIMD __attribute__((target("avx2,fma,f16c"))) inline

namespace kvfid::engine::twin::x86 {
using ref::FloatFormat;  // the numeric core's format enum

inline bool simd_x86_available() {
  static const bool ok =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return ok;
}

// Eight consecutive stored elements as FP32, the bits Storage<F>::load gives.
KVFID_SIMD __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
// BF16: bits << 16, as bf16_to_f32.
KVFID_SIMD __m256 load8_bf16(const std::uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}
// FP16: the hardware conversion for non-NaN values -- every FP16 value is exactly an
// FP32 value, so an exact conversion has one answer, f16_to_f32's (the same argument
// as the device's cvt in convert.h) -- and f16_to_f32 itself where a NaN is among the
// eight (F16C would quiet a signalling NaN; the integer path keeps its payload).
KVFID_SIMD __m256 load8_f16(const std::uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7FFF)), _mm_set1_epi16(0x7C00));
  if (_mm_testz_si128(nan, nan)) return _mm256_cvtph_ps(h);
  alignas(32) float f[8];
  for (int i = 0; i < 8; ++i) f[i] = num::f16_to_f32(p[i]);
  return _mm256_load_ps(f);
}
template <FloatFormat F>
KVFID_SIMD __m256 load8(const typename num::Storage<F>::T* p) {
  if constexpr (F == FloatFormat::f32) return load8(p);
  else if constexpr (F == FloatFormat::bf16) return load8_bf16(p);
  else return load8_f16(p);
}

// r[j][t] -> r[t][j], 8x8.
KVFID_SIMD void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

}  // namespace kvfid::engine::twin::x86

#endif
