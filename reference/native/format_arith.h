#pragma once
// IEEE arithmetic in binary32, binary16 or bfloat16, computed natively, giving the same
// bits as MpArith::ieee(format) (reference/mp/mp_arith.h: the result correctly rounded
// to nearest even, with the format's subnormals and overflow to Inf). Values of every
// format are held as float: binary16 and bfloat16 are subsets of binary32.
//
// Why each operation is the correctly rounded one (p = significand bits: binary16 11,
// bfloat16 8, binary32 24, binary64 53):
//  * binary32: + - * / sqrt of binary32 operands are IEEE operations on x86 SSE (round
//    to nearest even, subnormals kept: no -ffast-math, no FTZ/DAZ), and the project is
//    built with -ffp-contract=off, so no a*b+c is fused behind our back.
//  * binary16, bfloat16: the operation runs in binary64 and its result is rounded once
//    more to the format (round()). Rounding twice is innocuous for + - * / sqrt of two
//    operands of a p-bit format when the first rounding keeps p' >= 2p + 2 bits
//    (S. A. Figueroa, "When is double rounding innocuous?", ACM SIGNUM Newsletter 30(3),
//    1995): 53 >= 24 (binary16) and 53 >= 18 (bfloat16). Figueroa's formats have no
//    exponent limits; binary64's range contains both formats', so the first rounding
//    is never subnormal or infinite, and the overflow threshold is a midpoint like any
//    other. A result in the format's subnormal range is handled apart: a sum of two
//    format values is exact there (both are multiples of the smallest subnormal), a
//    product of two binary32 values is exact in binary64 (48 bits), a square root never
//    lands there, and a quotient a/b that is not a midpoint m lies at least 2^-(2p+1) m
//    from it (a - m b is a nonzero multiple of a power of two set by b's and the grid's
//    last bits), farther than binary64's 2^-53 relative rounding error moves it.
//  * Operands the format may not hold (a binary32 bias or norm weight, the float64 eps,
//    a weight or KV value of any float64): Figueroa does not apply, so the binary64
//    result is made the rounding to odd of the exact one (its exact error from TwoSum or
//    an fma) and then rounded to the format, which is correct when p' >= p + 2
//    (S. Boldo, G. Melquiond, "Emulation of FMA and correctly rounded sums: proved
//    algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008): 53 >= 26.
//    Where the error term would itself underflow (|result| < kTinyResult, never met by
//    values of these formats times float64 weights of sane size), MPFR computes it.
//  * exp: glibc's binary64 exp, whose error is within kExpRelativeError; when both ends
//    of the enclosure round to the same format value, that value is the correctly
//    rounded exp (rounding is monotonic). Otherwise MPFR computes it, as the emulation.
//    tanh likewise (Gemma 2), glibc's binary64 tanh within kTanhRelativeError.
// Everything here must run inside an ExponentRangeScope (the MPFR fallbacks need it).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "reference/formats/float_format.h"

namespace kvfid::ref::native {

// glibc documents its binary64 exp within 1 ulp (2^-52 relative) on x86-64 (manual,
// "Known Maximum Errors in Math Functions"; since 2.28 the new exp claims 0.511 ulp). The
// enclosure assumes 2^-49 (8 ulp), and its computed ends are widened to 2^-45 so that
// their own roundings cannot bring them inside: far below the formats' 2^-24 spacing, so
// MPFR is needed about once in 2^20 binary32 exps.
inline constexpr double kExpRelativeError = 0x1p-49;
inline constexpr double kExpEnclosure = 0x1p-45;
static_assert(kExpEnclosure >= 8 * kExpRelativeError, "the enclosure must hold the error and its own roundings");
// glibc documents its binary64 tanh within 2 ulp (2^-51 relative) on x86-64 (the same
// table); the enclosure assumes 2^-49 and is widened to kExpEnclosure, as exp's.
inline constexpr double kTanhRelativeError = 0x1p-49;
static_assert(kExpEnclosure >= 8 * kTanhRelativeError, "the enclosure must hold the error and its own roundings");
// exp(x) for x above kExpOverflow exceeds every format's largest value by far (e^100 >
// 2^144), and below kExpUnderflow is under half of binary32's smallest subnormal
// (e^-120 < 2^-173 < 2^-150): Inf and +0 in every format, as MPFR rounds them.
inline constexpr double kExpOverflow = 100;
inline constexpr double kExpUnderflow = -120;
// Below this a product's or quotient's binary64 error term may not be representable
// (binary64's emin -1022 plus 53 bits, with margin); MPFR takes over.
inline constexpr double kTinyResult = 0x1p-960;

inline std::uint64_t bits_of(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, 8);
  return u;
}
inline double double_of(std::uint64_t u) {
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}
inline bool fits_binary32(double x) { return double(float(x)) == x; }  // false for NaN

// r = RN(x) in binary64 and err of x - r's sign (0 when r is exact): the rounding to odd
// of x, the neighbour of x whose last significand bit is 1 when x is not representable.
inline double to_odd(double r, double err) {
  if (err == 0 || (bits_of(r) & 1)) return r;
  // r's last bit is even, so x's other neighbour, one step towards x, is odd.
  return double_of(bits_of(r) + (std::signbit(err) == std::signbit(r) ? 1 : std::uint64_t(-1)));
}

// Fallbacks computed by MpArith::ieee(format) itself (format_fallback.cpp).
float mpfr_mul(FloatFormat f, double a, double b);
float mpfr_div(FloatFormat f, double a, double b);
float mpfr_exp(FloatFormat f, float a);
float mpfr_tanh(FloatFormat f, float a);

template <FloatFormat F>
struct FormatArith {
  static constexpr int kP = F == FloatFormat::f16 ? 11 : F == FloatFormat::bf16 ? 8 : 24;
  static constexpr int kEmin = F == FloatFormat::f16 ? -14 : -126;  // exponent of the smallest normal
  static constexpr int kEmax = F == FloatFormat::f16 ? 15 : 127;    // exponent of the largest finite

  // x (exact, or rounded to odd in binary64) rounded to nearest even in the format.
  static float round(double x) {
    if constexpr (F == FloatFormat::f32) {
      return float(x);  // cvtsd2ss: round to nearest even, subnormals, Inf
    } else {
      if (std::isnan(x)) return float(x);
      const double a = std::fabs(x);
      double r;
      if (a < std::ldexp(1.0, kEmin)) {
        // Subnormal range: adding C, whose binade's spacing is the format's smallest
        // subnormal 2^(emin - p + 1), rounds a onto that grid (ties to even, since C is
        // an even multiple); subtracting C back is exact (Sterbenz).
        const double c = std::ldexp(1.0, kEmin - kP + 1 + 52);
        r = (a + c) - c;
      } else {
        // Normal range: round the binary64 significand to p bits on its bits; a carry
        // into the exponent field is exactly right.
        constexpr int s = 53 - kP;
        std::uint64_t u = bits_of(a);
        u = (u + ((std::uint64_t(1) << (s - 1)) - 1) + ((u >> s) & 1)) & ~((std::uint64_t(1) << s) - 1);
        r = double_of(u);
        if (r >= std::ldexp(1.0, kEmax + 1)) r = INFINITY;
      }
      return float(std::copysign(r, x));  // exact: the format embeds in binary32
    }
  }

  // Both operands in the format (Figueroa).
  static float add(float a, float b) {
    if constexpr (F == FloatFormat::f32) return a + b;
    else return round(double(a) + double(b));
  }
  static float sub(float a, float b) {
    if constexpr (F == FloatFormat::f32) return a - b;
    else return round(double(a) - double(b));
  }
  static float div(float a, float b) {
    if constexpr (F == FloatFormat::f32) return a / b;
    else return round(double(a) / double(b));
  }
  static float sqrt(float a) {
    if constexpr (F == FloatFormat::f32) return std::sqrt(a);
    else return round(std::sqrt(double(a)));
  }
  // Any two binary32 values: the binary64 product is exact.
  static float mul(float a, float b) {
    if constexpr (F == FloatFormat::f32) return a * b;
    else return round(double(a) * double(b));
  }

  // a in the format, b any float64 (Boldo and Melquiond's rounding to odd).
  static float add_any(float a, double b) {
    const double s = double(a) + b;
    if (!std::isfinite(s)) return round(s);  // Inf or NaN: what the exact sum rounds to
    const double bb = s - a;                  // TwoSum (Knuth): a + b = s + err exactly
    const double err = (double(a) - (s - bb)) + (b - bb);
    return round(to_odd(s, err));
  }
  static float mul_any(float a, double b) {
    if (fits_binary32(b)) return mul(a, float(b));
    const double p = double(a) * b;
    if (!std::isfinite(p) || a == 0 || b == 0) return round(p);  // exact (or NaN/Inf as the exact one)
    // |p| >= 2^-960: e_a + e_b is far above binary64's e_min + 52, so a b - p is a
    // binary64 number (S. Boldo, M. Daumas, "Representable correcting terms for possibly
    // underflowing floating point operations", ARITH 16, 2003; the same for the remainder).
    if (std::fabs(p) < kTinyResult) return mpfr_mul(F, a, b);
    return round(to_odd(p, std::fma(double(a), b, -p)));
  }
  static float div_any(float a, double b) {
    const double q = double(a) / b;
    if (!std::isfinite(q) || a == 0 || std::isinf(b)) return round(q);
    if (std::fabs(q) < kTinyResult) return mpfr_div(F, a, b);
    // a - q b exactly (q normal, and q b ~ a >= 2^-149 keeps its last bit within binary64's
    // range); a/b - q has the sign of rem / b.
    const double rem = std::fma(-q, b, double(a));
    return round(to_odd(q, std::signbit(b) ? -rem : rem));
  }

  static float exp(float a) {
    const double x = a;
    if (std::isnan(x)) return a;
    if (x > kExpOverflow) return INFINITY;
    if (x < kExpUnderflow) return 0.0f;
    const double y = std::exp(x);  // normal: e^-120 .. e^100
    const float lo = round(y - y * kExpEnclosure), hi = round(y + y * kExpEnclosure);
    return lo == hi ? lo : mpfr_exp(F, a);
  }

  static float tanh(float a) {
    if (std::isnan(a) || a == 0) return a;  // tanh(+-0) = +-0, as MPFR's
    const double y = std::tanh(double(a));  // |y| in [2^-149 (about), 1]: normal in binary64
    const float lo = round(y - std::fabs(y) * kExpEnclosure), hi = round(y + std::fabs(y) * kExpEnclosure);
    return lo == hi ? lo : mpfr_tanh(F, a);
  }
};

}  // namespace kvfid::ref::native
