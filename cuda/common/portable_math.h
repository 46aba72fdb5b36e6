#pragma once
// Op map (SwiGLU, GeGLU; docs/ops.md): reference reference/mp/swiglu.h | shared cuda/common/portable_math.h (silu, gelu_tanh) | kernel gated_kernel | twin TwinBackend::run (FFN) | tests EnginePortableMath.SiluAccuracy, EnginePortableMath.GeluTanhAccuracy, EngineTwinReference.*
// exp, log, tanh, SiLU, tanh-GELU and soft-capping from basic IEEE operations only (no libm, no __expf, no __logf),
// so the host and the device compute the same bits. Accuracy against the exact exp is measured in
// tests/cuda/common/portable_math_test.cpp.
#include <cstdint>

#include "reference/numeric/ieee.h"

namespace kvfid::engine::num {
using namespace kvfid::ref::num;  // the numeric core's conversions
using namespace kvfid::ref;  // the specification's names: the layer below

// 2^e as a float for e in [-126, 127] (a normal number: exact).
KVFID_HD float pow2_normal(int e) { return float_of(std::uint32_t(e + 127) << 23); }

// exp(x) = 2^k * exp(r), k = nearest integer to x*log2(e), r = x - k*ln2.
//  - k: x*log2e rounded once, then rounded to an integer by the 1.5*2^23 trick (exact
//    IEEE adds in round-to-nearest-even; |x*log2e| < 2^22 here).
//  - r: ln2 split Cody-Waite style into hi (16 significant bits, so k*hi is exact for
//    |k| <= 151) and lo; each step is one fma, so r carries about 2^-24 |r| error.
//    |r| <= ln2/2 + a rounding of t, i.e. about 0.347.
//  - exp(r): Taylor series to degree 7 in Horner form with fma; the truncation
//    term r^8/8! < 5.3e-9 relative, below a tenth of an FP32 ulp.
//  - scaling by 2^k: exact multiplications by powers of two, split in two so that a
//    subnormal result is rounded once (the first product stays normal and exact).
KVFID_HD float exp_portable(float x) {
  if (x != x) return x;
  if (x > 88.72283935546875f) return infinity();  // exp > FLT_MAX (+ half ulp) beyond this
  if (x < -104.0f) return 0.0f;                   // exp < 2^-150: rounds to zero
  const float t = x * 1.44269504088896341f;       // log2(e)
  const float k = (t + 12582912.0f) - 12582912.0f;
  constexpr float kLn2Hi = 0.693145751953125f;       // 0x3F317200
  constexpr float kLn2Lo = 1.42860682030941723e-6f;  // ln2 - kLn2Hi
  float r = fma(k, -kLn2Hi, x);
  r = fma(k, -kLn2Lo, r);
  float p = 1.98412698412698413e-4f;  // 1/7!
  p = fma(p, r, 1.38888888888888889e-3f);
  p = fma(p, r, 8.33333333333333333e-3f);
  p = fma(p, r, 4.16666666666666667e-2f);
  p = fma(p, r, 1.66666666666666667e-1f);
  p = fma(p, r, 0.5f);
  p = fma(p, r, 1.0f);
  p = fma(p, r, 1.0f);
  const int ki = int(k);  // exact: k is an integer in [-151, 128]
  if (ki > 127) return (p * pow2_normal(127)) * pow2_normal(ki - 127);
  if (ki < -126) return (p * pow2_normal(ki + 64)) * pow2_normal(-64);
  return p * pow2_normal(ki);
}

// log(x) = k ln2 + log(1 + f), with x = 2^k (1 + f) and 1 + f in [sqrt(1/2), sqrt(2)).
//  - Reduction by bit manipulation: subnormals are first scaled by 2^25 (exact); the
//    significand gets exponent 0 (or -1 when above sqrt(2)), so f = m - 1 is exact
//    (Sterbenz) and |f| < 0.4143.
//  - log(1 + f) = 2 atanh(s), s = f / (2 + f), |s| < 0.1716:
//      2 atanh(s) = 2s + s R(s^2),  R(z) = 2z/3 + 2z^2/5 + 2z^3/7 + 2z^4/9 (+ truncated
//      2z^5/11 < 2.1e-9 relative to 2s, below 0.04 ulp).
//    Since 2s = f - s f and s f = hf - s hf with hf = f^2/2, log(1 + f) =
//    f - (hf - s (hf + R)): the exact f comes first and every rounded term is below
//    0.21 |f|, so their rounding errors reach the result damped (the fdlibm arrangement).
//  - k ln2: ln2 split as in exp_portable, k ln2hi exact (|k| <= 152, 16-bit hi); the
//    lo part joins the small terms, the hi part is added last.
// Special values: log(+-0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN stays NaN.
KVFID_HD float log_portable(float x) {
  if (x != x) return x;
  if (x == 0.0f) return -infinity();
  if (x < 0.0f) return float_of(0x7FC00000u);  // quiet NaN
  if (x == infinity()) return x;
  int k = 0;
  if (x < pow2_normal(-126)) {
    x = x * pow2_normal(25);
    k = -25;
  }
  std::uint32_t u = bits_of(x);
  k += int(u >> 23) - 127;
  u = (u & 0x007FFFFFu) | 0x3F800000u;  // significand in [1, 2)
  if (u > 0x3FB504F3u) {                // above sqrt(2) (0x3FB504F3 = RN(sqrt 2), below it)
    u -= 0x00800000u;                   // halve: [sqrt(1/2), 1)
    k += 1;
  }
  const float f = float_of(u) - 1.0f;
  const float s = div(f, 2.0f + f);
  const float z = s * s;
  float r = 2.22222222222222222e-1f;  // 2/9
  r = fma(r, z, 2.85714285714285714e-1f);  // 2/7
  r = fma(r, z, 4.0e-1f);                  // 2/5
  r = fma(r, z, 6.66666666666666667e-1f);  // 2/3
  r = r * z;
  const float hf = 0.5f * (f * f);
  constexpr float kLn2Hi = 0.693145751953125f;       // 0x3F317200, as in exp_portable
  constexpr float kLn2Lo = 1.42860682030941723e-6f;  // ln2 - kLn2Hi
  const float kf = float(k);
  const float small = fma(s, hf + r, kf * kLn2Lo);   // s (hf + R) + k ln2lo
  return fma(kf, kLn2Hi, f - (hf - small));
}

// SiLU(x) = x * sigmoid(x) = x / (1 + exp(-x)); for x -> -inf the denominator is Inf
// and the result -0, the correct limit.
KVFID_HD float silu(float x) { return div(x, 1.0f + exp_portable(-x)); }

// tanh(x), odd, from |x| = a:
//  - a < 2^-12: x itself (tanh x = x (1 - x^2/3 + ...), within 2^-25 x: rounds to x).
//  - a < 0.55: Taylor to x^19 in Horner form on z = x^2 with fma, as x + (x z) P(z);
//    the first omitted term, 18888466084/194896477400625 x^21 (9.7e-5 x^21), is below
//    6.2e-10 of x at a = 0.55, 0.01 ulp. x + (x z) P(z): the correction is below
//    a^2/3 = 0.1 of x, so its rounding errors reach the result damped.
//  - 0.55 <= a < 9.1: tanh(a) = (1 - e) / (1 + e), e = exp(-2a) in (1.2e-8, 0.333]
//    (-2a exact): e's error (kExpMaxUlp) reaches 1 - e amplified by e / (1 - e) <= 0.5,
//    and 1 - e, 1 + e and the division add half an ulp each.
//  - a >= 9.1: 1 - tanh(a) < 2 e^(-18.2) < 2^-25: rounds to 1 (inf included).
// NaN stays NaN; tanh(-0) = -0.
KVFID_HD float tanh_portable(float x) {
  if (x != x) return x;
  const float a = x < 0.0f ? -x : x;
  if (a < 2.44140625e-4f) return x;  // 2^-12: x^3/3 < 2^-25 x, so tanh x rounds to x (+-0 kept)
  if (a < 0.55f) {
    const float z = x * x;
    float p = -2.391291142e-4f;  // -443861162/1856156927625 (x^19)
    p = fma(p, z, 5.900274409e-4f);   // 6404582/10854718875
    p = fma(p, z, -1.455834387e-3f);  // -929569/638512875
    p = fma(p, z, 3.592128037e-3f);   // 21844/6081075
    p = fma(p, z, -8.863235530e-3f);  // -1382/155925
    p = fma(p, z, 2.186948854e-2f);   // 62/2835
    p = fma(p, z, -5.396825397e-2f);  // -17/315
    p = fma(p, z, 1.333333333e-1f);   // 2/15
    p = fma(p, z, -3.333333333e-1f);  // -1/3
    return fma(x * z, p, x);
  }
  float t = 1.0f;
  if (a < 9.1f) {
    const float e = exp_portable(-2.0f * a);
    t = div(1.0f - e, 1.0f + e);
  }
  return x < 0.0f ? -t : t;
}

// Soft-capping (Gemma 2): cap * tanh(x / cap), cap > 0; each step rounded once, as the
// reference's BallArith::soft_cap.
KVFID_HD float soft_cap(float x, float cap) { return cap * tanh_portable(div(x, cap)); }

// GELU, tanh approximation (GeGLU's gate; HF gelu_pytorch_tanh), in reference/mp/swiglu.h's
// order: (0.5 x) (1 + tanh(C (x + A ((x x) x)))), C = sqrt(2/pi) and A = 0.044715 rounded
// to FP32. Where tanh rounds to -1 (x below about -5.6) the result is -0, the exact value
// being below 1e-19 in magnitude.
KVFID_HD float gelu_tanh(float x) {
  constexpr float kC = 0.797884560802865355f;  // sqrt(2/pi)
  constexpr float kA = 0.044715f;
  const float cube = (x * x) * x;
  const float t = tanh_portable(kC * (x + kA * cube));
  return (0.5f * x) * (1.0f + t);
}

}  // namespace kvfid::engine::num
