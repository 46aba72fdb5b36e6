#include "cuda/twin/row_dot_simd.h"

#include <cmath>

#include "cuda/common/row_dot.h"

#include "cuda/twin/simd_x86.h"

namespace kvfid::engine::twin {

using ref::FloatFormat;
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

bool row_dot_simd_available() { return x86::simd_x86_available(); }

namespace {

using x86::load8;
using x86::transpose8;

template <FloatFormat F>
__attribute__((target("avx2,fma,f16c"))) float row_dot_avx2(const typename num::Storage<F>::T* w, const float* x,
                                                       const float* xt, int n) {
  const int steps = n / kRowStep;
  __m256 acc[kWarp / 8];  // acc[g] holds lanes 8g..8g+7
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (int s = 0; s < steps; ++s)
    for (int g = 0; g < kWarp / 8; ++g) {
      __m256 r[8];  // r[j]: lane 8g+j's kVec elements of step s
      for (int j = 0; j < 8; ++j) r[j] = load8<F>(w + s * kRowStep + (8 * g + j) * kVec);
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

template <FloatFormat F>
float row_dot_simd(const typename num::Storage<F>::T* w, const float* x, const float* xt, int n) {
  return row_dot_avx2<F>(w, x, xt, n);
}

#else  // not x86-64: row_dot_host serves

bool row_dot_simd_available() { return false; }

template <FloatFormat F>
float row_dot_simd(const typename num::Storage<F>::T* w, const float* x, const float*, int n) {
  return num::row_dot_host<F>(w, x, n);
}

#endif

template float row_dot_simd<FloatFormat::f32>(const float*, const float*, const float*, int);
template float row_dot_simd<FloatFormat::f16>(const std::uint16_t*, const float*, const float*, int);
template float row_dot_simd<FloatFormat::bf16>(const std::uint16_t*, const float*, const float*, int);

}  // namespace kvfid::engine::twin
