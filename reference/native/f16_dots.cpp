// accumulate_f16 (f16_dots.h) on AVX2 + F16C. RN16(v) below is VCVTPS2PH with the immediate
// rounding mode "nearest even" (not MXCSR's) followed by VCVTPH2PS: the IEEE conversion of
// a binary32 value to binary16 -- subnormal results kept, overflow to Inf, NaN quieted --
// then back, exactly (every binary16 value is a binary32 value). Each vector step is the
// scalar step of FormatArith<f16> (format_arith.h, which rounds a binary64 result) on
// every lane:
//  * product, mul(a, b), F16Products::narrow: one operand is binary16 (11 significant
//    bits), the other has at most 13 (kF16DotOperandBits). If the exact product's
//    magnitude is in binary32's normal range [2^-126, 2^128) it has at most 24 bits and
//    the binary32 multiply is exact: RN16 of it is the scalar result. At or above 2^128
//    binary32 overflows to Inf of the product's sign, and the exact product (far above
//    binary16's overflow threshold 65520) rounds to the same Inf. Below 2^-126 the binary32 product (rounded, maybe subnormal or zero)
//    stays at most 2^-126, far under 2^-25, half binary16's smallest subnormal, so both
//    round to a zero of the product's sign. Zeros, Inf and NaN operands give the same
//    IEEE specials in both (NaN payloads may differ; the emulation's taps hold every NaN
//    as one).
//  * product, F16Products::binary32: one operand binary16, the other any binary32 value.
//    The binary64 product x is exact (11 + 24 bits), as the scalar mul's. Its rounding to
//    odd at binary32's 24 bits, RO32(x), is formed on x's bits: the last 29 of its 52
//    significand field bits cleared, and bit 29 set when any of them was set (of the two
//    24-bit neighbours of an inexact x, the one whose last bit is 1); the result is a
//    binary32 value wherever |x| >= 2^-126, so the conversion to binary32 is exact there.
//    RN16(RO32(x)) = RN16(x) because 24 >= 11 + 2 (S. Boldo, G. Melquiond, "Emulation of
//    FMA and correctly rounded sums: proved algorithms using rounding to odd", IEEE Trans.
//    Computers 57(4), 2008), also in binary16's subnormal range (binary32 resolves far
//    below its grid) and at its overflow threshold 65520, a midpoint like any other. Where
//    |x| < 2^-126 the converted value stays at most 2^-126 with x's sign: a zero of that
//    sign in both, as above; where |x| >= 2^128 it overflows to Inf like the exact x. A
//    NaN stays a NaN (exponent bits untouched, significand nonzero).
//  * sum, add(s, p): both binary16. Their binary32 sum rounded to binary16 is the
//    correctly rounded sum: rounding twice is innocuous when the first keeps p' >= 2p + 2
//    bits (S. A. Figueroa, "When is double rounding innocuous?", ACM SIGNUM Newsletter
//    30(3), 1995): 24 >= 2 * 11 + 2. Binary32's range holds every such sum (|s + p| <=
//    2 * 65504, and a nonzero one is a multiple of 2^-24), so the first rounding has no
//    exponent limit; in binary16's subnormal range the sum is exact in binary32 (a
//    multiple of 2^-24 below 2^-13). An exact zero sum is +0 in both (round to nearest),
//    -0 + -0 = -0 in both.
// Nothing is fused: the target has no FMA, and the project builds with -ffp-contract=off.
// Binary64 and binary32 operations round to nearest even (MXCSR's default, as everywhere in
// the native emulation).
#include "reference/native/f16_dots.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "reference/native/format_arith.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace kvfid::ref::native {

bool f16_dot_operands(const float* v, std::size_t n) {
  constexpr std::uint32_t low = (std::uint32_t(1) << (24 - kF16DotOperandBits)) - 1;  // significand bits past 13
  std::uint32_t any = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, &v[i], 4);
    any |= u & low;
  }
  return any == 0;
}

#if defined(__x86_64__)

namespace {

__attribute__((target("avx2,f16c"))) inline __m256 rn16(__m256 v) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

// RO32 of four exact binary64 products (see above), as binary32.
__attribute__((target("avx2,f16c"))) inline __m128 odd32(__m256d x) {
  const __m256i low = _mm256_set1_epi64x((std::int64_t(1) << 29) - 1);
  const __m256i u = _mm256_castpd_si256(x);
  const __m256i exact = _mm256_cmpeq_epi64(_mm256_and_si256(u, low), _mm256_setzero_si256());
  const __m256i sticky = _mm256_andnot_si256(exact, _mm256_set1_epi64x(std::int64_t(1) << 29));
  return _mm256_cvtpd_ps(_mm256_castsi256_pd(_mm256_or_si256(_mm256_andnot_si256(low, u), sticky)));
}

// RN16 of a_i times eight b values, a_i also given as binary64 (ad).
template <F16Products P>
__attribute__((target("avx2,f16c"))) inline __m256 product16(__m256 a, __m256d ad, __m256 b) {
  if constexpr (P == F16Products::narrow) {
    return rn16(_mm256_mul_ps(a, b));
  } else {
    const __m128 lo = odd32(_mm256_mul_pd(ad, _mm256_cvtps_pd(_mm256_castps256_ps128(b))));
    const __m128 hi = odd32(_mm256_mul_pd(ad, _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1))));
    return rn16(_mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1));
  }
}

// V vectors of sums at once: V independent chains keep the conversions' latency hidden.
template <F16Products P, int V>
__attribute__((target("avx2,f16c"))) void sums_avx2(float* acc, const float* a, int n, const float* b,
                                                   std::size_t stride) {
  __m256 s[V];  // s[k]: lanes 8k .. 8k + 7
  for (int k = 0; k < V; ++k) s[k] = _mm256_loadu_ps(acc + k * kF16DotLanes);
  for (int i = 0; i < n; ++i) {
    const float* bi = b + std::size_t(i) * stride;
    const __m256 ai = _mm256_set1_ps(a[i]);
    const __m256d ad = _mm256_set1_pd(double(a[i]));
    for (int k = 0; k < V; ++k) {
      const __m256 product = product16<P>(ai, ad, _mm256_loadu_ps(bi + k * kF16DotLanes));
      s[k] = rn16(_mm256_add_ps(s[k], product));
    }
  }
  for (int k = 0; k < V; ++k) _mm256_storeu_ps(acc + k * kF16DotLanes, s[k]);
}

constexpr int kBlock = 8;  // vectors of one full pass (the tail runs 1 to kBlock - 1)

template <F16Products P, int... V>
void tail(float* acc, const float* a, int n, const float* b, std::size_t stride, int vectors,
          std::integer_sequence<int, V...>) {
  ((vectors == V ? sums_avx2<P, V>(acc, a, n, b, stride) : void()), ...);
}

template <F16Products P>
void accumulate(float* acc, const float* a, int n, const float* b, std::size_t stride, int width) {
  if (n == 0) return;  // no terms: acc stays, and b may be null (no offset may be applied to it)
  int l = 0;
  for (; l + kBlock * kF16DotLanes <= width; l += kBlock * kF16DotLanes)
    sums_avx2<P, kBlock>(acc + l, a, n, b + l, stride);
  tail<P>(acc + l, a, n, b + l, stride, (width - l) / kF16DotLanes, std::integer_sequence<int, 1, 2, 3, 4, 5, 6, 7>{});
}

}  // namespace

// AVX2 from the compiler's runtime (it also checks that the OS saves the YMM registers);
// F16C from CPUID leaf 1 ECX bit 29 (Intel SDM vol. 2A, CPUID): clang's
// __builtin_cpu_supports has no "f16c".
bool f16_dots_available() {
  static const bool ok = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
  }();
  return ok;
}

void accumulate_f16(float* acc, const float* a, int n, const float* b, std::size_t stride, int width, F16Products p) {
  if (p == F16Products::narrow) accumulate<F16Products::narrow>(acc, a, n, b, stride, width);
  else accumulate<F16Products::binary32>(acc, a, n, b, stride, width);
}

#else  // not x86-64: never chosen (f16_dots_available), defined for the link

bool f16_dots_available() { return false; }

void accumulate_f16(float* acc, const float* a, int n, const float* b, std::size_t stride, int width, F16Products) {
  using A = FormatArith<FloatFormat::f16>;
  for (int l = 0; l < width; ++l)
    for (int i = 0; i < n; ++i) acc[l] = A::add(acc[l], A::mul(a[i], b[std::size_t(i) * stride + l]));
}

#endif

}  // namespace kvfid::ref::native
