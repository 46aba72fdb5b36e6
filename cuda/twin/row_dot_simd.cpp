#include "cuda/twin/row_dot_simd.h"

#include <cmath>

#include "cuda/common/row_dot.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kvfid::twin {

using num::Fmt;
using num::kRowStep;
using num::kVec;
using num::kWarp;

static_assert(kVec == 8 && kWarp == 32, "the SIMD path maps 8 lanes of kVec = 8 elements to one 8x8 transpose");

void lane_major(const float* x, int n, float* xt) {
  for (int s = 0; s < n / kRowStep; ++s)
    for (int t = 0; t < kVec; ++t)
      for (int lane = 0; lane < kWarp; ++lane) xt[(s * kVec + t) * kWarp + lane] = x[s * kRowStep + lane * kVec + t];
}

#if defined(__x86_64__)

bool row_dot_simd_available() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

namespace {

#define KVFID_SIMD __attribute__((target("avx2,fma"))) inline

// Eight consecutive elements as FP32.
KVFID_SIMD __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
KVFID_SIMD __m256 load8(const std::uint16_t* p) {  // BF16: bits << 16, as bf16_to_f32
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
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

template <Fmt F>
__attribute__((target("avx2,fma"))) float row_dot_avx2(const typename num::Storage<F>::T* w, const float* x,
                                                       const float* xt, int n) {
  const int steps = n / kRowStep;
  __m256 acc[kWarp / 8];  // acc[g] holds lanes 8g..8g+7
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (int s = 0; s < steps; ++s)
    for (int g = 0; g < kWarp / 8; ++g) {
      __m256 r[8];  // r[j]: lane 8g+j's kVec elements of step s
      for (int j = 0; j < 8; ++j) r[j] = load8(w + s * kRowStep + (8 * g + j) * kVec);
      transpose8(r);  // r[t]: element t of lanes 8g..8g+7
      const float* xs = xt + s * kRowStep + 8 * g;
      for (int t = 0; t < kVec; ++t) acc[g] = _mm256_fmadd_ps(r[t], _mm256_loadu_ps(xs + t * kWarp), acc[g]);
    }
  alignas(32) float lanes[kWarp];
  for (int g = 0; g < kWarp / 8; ++g) _mm256_store_ps(lanes + 8 * g, acc[g]);
  for (int lane = 0; lane < kWarp; ++lane)  // the partial step, each lane in its order
    for (int k = steps * kRowStep + lane * kVec; k < n && k < steps * kRowStep + (lane + 1) * kVec; ++k)
      lanes[lane] = std::fmaf(num::Storage<F>::load(w[k]), x[k], lanes[lane]);
  return num::butterfly_host<num::Add>(lanes);
}

}  // namespace

template <Fmt F>
float row_dot_simd(const typename num::Storage<F>::T* w, const float* x, const float* xt, int n) {
  return row_dot_avx2<F>(w, x, xt, n);
}

#else  // not x86-64: row_dot_host serves

bool row_dot_simd_available() { return false; }

template <Fmt F>
float row_dot_simd(const typename num::Storage<F>::T* w, const float* x, const float*, int n) {
  return num::row_dot_host<F>(w, x, n);
}

#endif

template float row_dot_simd<Fmt::f32>(const float*, const float*, const float*, int);
template float row_dot_simd<Fmt::bf16>(const std::uint16_t*, const float*, const float*, int);

}  // namespace kvfid::twin
