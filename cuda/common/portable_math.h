#pragma once
// exp and SiLU from basic IEEE operations only (no libm, no __expf), so the host and
// the device compute the same bits. Accuracy against the exact exp is measured in
// tests/cuda/common/portable_math_test.cpp.
#include <cstdint>

#include "cuda/common/ieee.h"

namespace kvfid::num {

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

// SiLU(x) = x * sigmoid(x) = x / (1 + exp(-x)); for x -> -inf the denominator is Inf
// and the result -0, the correct limit.
KVFID_HD float silu(float x) { return div(x, 1.0f + exp_portable(-x)); }

}  // namespace kvfid::num
