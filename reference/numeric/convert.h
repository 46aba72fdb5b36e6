#pragma once
// FP16 and BF16 <-> FP32 by integer bit manipulation, identical on host and device
// (hardware conversions differ in availability and NaN handling). Rounding is to
// nearest, ties to even; overflow goes to Inf; subnormals are kept; NaN becomes a quiet
// NaN with the sign kept. Tested exhaustively against the exact codecs in
// reference/formats/minifloat.h, and on the device against the host
// (tests/cuda/gpu/gpu_convert_test.cu).
// One exception, for speed: on the device, FP16 -> FP32 of a non-NaN value uses the
// hardware conversion. Every FP16 value is exactly an FP32 value, so an exact
// conversion has one answer: the bits the integer path computes (Inf and signed zeros
// included; FP16 subnormals become FP32 normals, untouched by flush-to-zero).
#include <cstdint>

#include "reference/numeric/ieee.h"

namespace kvfid::ref::num {

KVFID_HD float f16_to_f32(std::uint16_t h) {
#if KVFID_ON_DEVICE
  if ((h & 0x7FFFu) <= 0x7C00u) {  // not NaN: one exact cvt instead of ~12 integer ops
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
  }
#endif
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  std::uint32_t man = h & 0x3FFu;
  if (exp == 0x1Fu) return float_of(sign | 0x7F800000u | (man << 13));  // Inf, NaN (payload kept)
  if (exp != 0) return float_of(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0) return float_of(sign);
  // Subnormal: value man * 2^-24; normalize so the leading one becomes implicit.
  int e = 113;  // biased float exponent of 2^-14, the subnormals' scale before shifting
  while ((man & 0x400u) == 0) {
    man <<= 1;
    --e;
  }
  return float_of(sign | (std::uint32_t(e) << 23) | ((man & 0x3FFu) << 13));
}

// Shifts m right by s (s >= 1) rounding to nearest even, using the bits shifted out.
KVFID_HD std::uint32_t shift_right_rne(std::uint32_t m, int s) {
  if (s >= 32) return 0;  // m < 2^24 here, so everything shifted out is below half an ulp
  const std::uint32_t kept = m >> s;
  const std::uint32_t rest = m & ((1u << s) - 1u);
  const std::uint32_t half = 1u << (s - 1);
  return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

KVFID_HD std::uint16_t f32_to_f16(float f) {
  const std::uint32_t u = bits_of(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t exp = (u >> 23) & 0xFFu;
  const std::uint32_t man = u & 0x7FFFFFu;
  if (exp == 0xFFu) return std::uint16_t(sign | 0x7C00u | (man ? 0x200u | (man >> 13) : 0u));
  const int e = int(exp) - 127;  // unbiased; float subnormals (exp 0) are far below FP16's range
  if (e >= 16) return std::uint16_t(sign | 0x7C00u);
  if (e >= -14) {
    // Normal FP16: 11-bit significand from the 24-bit one. A carry out of the
    // significand increments the exponent field, which is exactly right (up to Inf).
    const std::uint32_t sig = shift_right_rne(man | 0x800000u, 13);
    return std::uint16_t(sign + ((std::uint32_t(e + 15) << 10) + sig - 0x400u));
  }
  if (exp == 0) return std::uint16_t(sign);  // |f| < 2^-126: rounds to zero
  // Subnormal FP16: value = sig * 2^-24, sig = (1.man) * 2^(e+24) rounded.
  const std::uint32_t sig = shift_right_rne(man | 0x800000u, 13 + (-14 - e));
  return std::uint16_t(sign | sig);  // sig may reach 0x400: the smallest normal, as it should
}

KVFID_HD float bf16_to_f32(std::uint16_t h) { return float_of(std::uint32_t(h) << 16); }

KVFID_HD std::uint16_t f32_to_bf16(float f) {
  const std::uint32_t u = bits_of(f);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x7FFFFFu)) return std::uint16_t((u >> 16) | 0x40u);  // quiet NaN
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest even; a carry ripples into
  // the exponent, overflowing to Inf exactly when it should.
  return std::uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace kvfid::ref::num
