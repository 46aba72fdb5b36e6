#pragma once
// Op map (SwiGLU; docs/ops.md): reference reference/mp/swiglu.h | shared cuda/common/portable_math.h (silu) | kernel swiglu_kernel | twin TwinBackend::run (FFN) | tests EnginePortableMath.SiluAccuracy, EngineTwinReference.*
// exp, log and SiLU from basic IEEE operations only (no libm, no __expf, no __logf),
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

}  // namespace kvfid::engine::num
