#pragma once
// Scaled FP8 for the KV cache, OCP 8-bit floating point: fp8_e4m3 (the "fn" variant:
// no Inf, largest finite 448, NaN = S.1111.111) and fp8_e5m2 (IEEE-style, largest
// finite 57344). One element per one-byte block; the stored code c stands for
// c * CodecParams::scale, the static scale chosen per tensor or per KV head.
//
// Encoding is x / scale (one correctly rounded FP32 division), then round to nearest
// even into FP8, SATURATING: anything beyond the largest finite value (Inf included)
// becomes the largest finite value of its sign, as OCP's saturating conversion and
// CUDA's __NV_SATFINITE do, so a cache never holds Inf. NaN encodes to NaN (the
// format's NaN code, sign kept). The scale must be a positive finite float.
//
// The bit conversions are integer-only (as reference/numeric/convert.h), identical on host
// and device; they are checked exhaustively against the exact codecs of
// reference/formats/minifloat.h (tests/reference/formats/quant/fp8_test.cpp, and on the
// device in tests/cuda/gpu/gpu_quant_test.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "reference/numeric/convert.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"

namespace kvfid::ref::quant {

// FP8 with kExp exponent bits and kMan mantissa bits; kFiniteOnly: OCP "fn" (no Inf,
// the all-ones exponent holds normals, only the all-ones code is NaN).
template <int kExp, int kMan, bool kFiniteOnly>
struct Fp8Bits {
  static constexpr MiniFloatSpec kSpec{kExp, kMan, kFiniteOnly};
  static constexpr int kManBits = kMan;
  static constexpr int kBias = (1 << (kExp - 1)) - 1;
  static constexpr int kMinExponent = 1 - kBias;  // of the smallest normal
  static constexpr std::uint32_t kExpMax = (1u << kExp) - 1;
  static constexpr std::uint32_t kManMask = (1u << kMan) - 1;
  static constexpr std::uint32_t kMaxFinite =
      kFiniteOnly ? (kExpMax << kMan) | (kManMask - 1) : ((kExpMax - 1) << kMan) | kManMask;
  // The largest finite value, (1 + m / 2^kMan) 2^(e - kBias) of the kMaxFinite code.
  static constexpr double kMaxValue = double((1u << kMan) + (kMaxFinite & kManMask)) / double(1u << kMan) *
                                      double(1u << ((kMaxFinite >> kMan) - kBias));
  static constexpr std::uint32_t kNaN = kFiniteOnly ? (kExpMax << kMan) | kManMask : (kExpMax << kMan) | (1u << (kMan - 1));

  KVFID_HD static float to_f32(std::uint8_t code) {
    const std::uint32_t sign = std::uint32_t(code & 0x80u) << 24;
    const std::uint32_t e = (code >> kMan) & kExpMax;
    std::uint32_t m = code & kManMask;
    if (e == kExpMax && (!kFiniteOnly || m == kManMask))
      return num::float_of(sign | 0x7F800000u | (m != 0 ? 0x400000u : 0u));  // Inf, or a quiet NaN
    if (e != 0) return num::float_of(sign | ((e + 127u - kBias) << 23) | (m << (23 - kMan)));
    if (m == 0) return num::float_of(sign);
    // Subnormal: m * 2^(kMinExponent - kMan); normalize so the leading one is implicit.
    std::uint32_t biased = 127 + kMinExponent;
    while ((m & (1u << kMan)) == 0) {
      m <<= 1;
      --biased;
    }
    return num::float_of(sign | (biased << 23) | ((m & kManMask) << (23 - kMan)));
  }

  KVFID_HD static std::uint8_t from_f32_saturating(float f) {
    const std::uint32_t u = num::bits_of(f);
    const std::uint32_t sign = (u >> 24) & 0x80u;
    const std::uint32_t exp = (u >> 23) & 0xFFu;
    const std::uint32_t man = u & 0x7FFFFFu;
    if (exp == 0xFFu) return std::uint8_t(sign | (man != 0 ? kNaN : kMaxFinite));
    // FP32 subnormals (< 2^-126) lie far below half the smallest FP8 subnormal (2^-17
    // for E5M2), so they round to zero; exp 0 must not get the implicit one below.
    if (exp == 0) return std::uint8_t(sign);
    const int e = int(exp) - 127;
    std::uint32_t code;
    if (e >= kMinExponent) {
      // Normal: 1 + kMan significant bits. A carry out of the significand increments
      // the exponent field, which is exactly right; the (e + kBias) field cannot
      // overflow 32 bits, and anything past the largest finite code saturates below.
      const std::uint32_t sig = num::shift_right_rne(man | 0x800000u, 23 - kMan);
      code = (std::uint32_t(e + kBias) << kMan) + sig - (1u << kMan);
    } else {
      // Subnormal: value sig * 2^(kMinExponent - kMan); sig may round up to the
      // smallest normal (1 << kMan), whose code is the same number.
      code = num::shift_right_rne(man | 0x800000u, 23 - kMan + (kMinExponent - e));
    }
    return std::uint8_t(sign | (code > kMaxFinite ? kMaxFinite : code));
  }
};

template <class Bits>
struct ScaledFp8 {
  static constexpr int kBlock = 1;
  static constexpr int kBytes = 1;
  static constexpr bool kExhaustive = true;  // 256 codes
  static constexpr double kUnitScaleMax = Bits::kMaxValue;

  // A NaN skips the division: x86 keeps a NaN operand's sign through it and CUDA
  // returns its canonical positive NaN, so the code's sign would differ.
  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams& p) {
    block[0] = Bits::from_f32_saturating(x[0] != x[0] ? x[0] : num::div(x[0], p.scale));
  }

  // One rounding: the FP8 value is exact in FP32, the product is rounded once.
  KVFID_HD static float decode(const std::uint8_t* block, int, const CodecParams& p) {
    return Bits::to_f32(block[0]) * p.scale;
  }

  // The FP8 value has at most 1 + kMan <= 4 significant bits and the scale 24: the
  // product needs at most 28 bits, and its exponent (>= 2^-16 * 2^-149) is far inside
  // float64's range, so float64 holds it exactly.
  static double decode_exact(const std::uint8_t* block, int, const CodecParams& p) {
    return minifloat_decode(block[0], Bits::kSpec) * double(p.scale);
  }

  // Let t = |x| / scale (real), y = fl32(t) the quotient encode computes, c its FP8
  // rounding. |x - c scale| = scale |t - c| <= scale (|t - y| + |y - c|):
  //   |t - y| <= 2^-24 t for a normal y, 2^-150 absolute for a subnormal one;
  //   |y - c| <= half an FP8 ulp at |y| when |y| is within range (RNE; up to half an
  //            ulp above the largest finite value the rounding lands on it too), else
  //            |y| - max (saturation).
  // Both are nondecreasing in |y| <= a := t (1 + 2^-22) (which also absorbs this
  // function's own float64 roundings), so
  //   bound = scale (2^-23 t + 2^-149 + max(half_ulp(a), a - max)).
  static double error_bound(const float* x, int, const CodecParams& p) {
    const double scale = p.scale;
    const double t = std::fabs(double(x[0])) / scale;
    const double a = t * (1 + 0x1p-22);
    const double largest = minifloat_decode(Bits::kMaxFinite, Bits::kSpec);
    const int e = a > 0 ? std::max(std::ilogb(a), Bits::kMinExponent) : Bits::kMinExponent;
    const double half_ulp = std::ldexp(1.0, e - Bits::kManBits - 1);
    return scale * (0x1p-23 * t + 0x1p-149 + std::max(half_ulp, a - largest));
  }
};

struct Fp8E4M3 : ScaledFp8<Fp8Bits<4, 3, true>> {
  static constexpr const char* kName = "fp8_e4m3";
};

struct Fp8E5M2 : ScaledFp8<Fp8Bits<5, 2, false>> {
  static constexpr const char* kName = "fp8_e5m2";
};

}  // namespace kvfid::ref::quant
