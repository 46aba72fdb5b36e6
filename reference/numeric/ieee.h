#pragma once
// The few IEEE-754 binary32 operations the engine uses, each correctly rounded
// (round to nearest, ties to even) on both sides, so host and device agree bit for bit:
//   + - * : IEEE on both; the host is built with -ffp-contract=off and nvcc with
//           -fmad=false, so no a*b+c is fused behind our back.
//   fma   : one rounding of the exact a*b+c (glibc fmaf and __fmaf_rn are both exact).
//   /, sqrt: correctly rounded (IEEE division and sqrtss on x86; __fdiv_rn and
//           __fsqrt_rn on the device, which --prec-div/--prec-sqrt also select).
// Denormals are kept on both sides (--ftz=false; x86 SSE default without -ffast-math).
#include <cstdint>
#include <cstring>

#include "reference/numeric/hd.h"

#if !KVFID_ON_DEVICE
#include <cmath>
#endif

namespace kvfid::ref::num {

KVFID_HD float fma(float a, float b, float c) {
#if KVFID_ON_DEVICE
  return __fmaf_rn(a, b, c);
#else
  return std::fmaf(a, b, c);
#endif
}

KVFID_HD float div(float a, float b) {
#if KVFID_ON_DEVICE
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

KVFID_HD float sqrt(float a) {
#if KVFID_ON_DEVICE
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

KVFID_HD std::uint32_t bits_of(float f) {
#if KVFID_ON_DEVICE
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

KVFID_HD float float_of(std::uint32_t u) {
#if KVFID_ON_DEVICE
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

KVFID_HD float infinity() { return float_of(0x7F800000u); }

// max that never consults the sign of zero or NaN payload rules of a library: the
// engine only takes maxima of finite scores, where this is the exact maximum.
KVFID_HD float max(float a, float b) { return a < b ? b : a; }

}  // namespace kvfid::ref::num
