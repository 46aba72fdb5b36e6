#pragma once
// TurboQuant's MSE quantizer (Zandieh et al. 2025) for the KV cache: tq1_32 ... tq4_128,
// b = 1..4 bits per element over blocks of B = 32 or 128 elements (a KV head row or a
// part of one). TurboQuant applies it after a random rotation of the vector, which
// makes every coordinate of the unit vector x / ||x|| distributed like a coordinate of a
// uniform random point of the sphere: sqrt(B) times it is close to N(0, 1). Each
// coordinate is then quantized with the Lloyd-Max (MSE-optimal) scalar quantizer of
// N(0, 1), scaled by 1 / sqrt(B). The rotation is the caller's; the codec quantizes
// the block it is given.
//   n   = sqrt(sum x_i^2): FP32, s = fma(x_i, x_i, s) for i = 0, 1, ... from s = +0, then
//         the correctly rounded sqrt; the block stores n16 = fp16(n)
//   t_i = x_i / n16 in FP32 (all codes 0 when n16 = 0)
//   code_i = the level nearest t_i among +-L_m, L_m = fl32(c_m / sqrt(B)), with c_m the
//         positive Lloyd-Max centroids (kGaussianCentroids); value = n16 * L(code)
// Levels and thresholds: B = 2 * 4^j (32: j = 2, 128: j = 3), so sqrt(B) = sqrt(2) 2^j
// and L_m = fl32(c_m / sqrt(2)) 2^-j exactly (scaling by a power of two commutes with
// the rounding in FP32's normal range): the tables below are those of B = 2 (unit_level),
// and u = t * 2^j (exact) is compared with them. The thresholds between adjacent
// magnitudes are their midpoints rounded up to FP32 (unit_threshold: the least float
// >= (L_m + L_{m+1}) / 2), so for every float u, |u| >= T_m exactly when |u| is at or
// past the midpoint: the chosen magnitude is exactly the one nearest |u|, a tie (a
// midpoint that is a float) going to the larger magnitude, away from zero. The sign is
// u < 0, so t = -0 takes +L_0, as +0 does. tests/reference/formats/quant/
// turbo_mse_test.cpp recomputes the centroids (Lloyd's iteration), the levels and the
// thresholds, and probes every threshold from both sides.
//
// Layout (little-endian): FP16 n16 (2 bytes), then kBlock b-bit codes as one bit
// string, element i in bits [i b, i b + b), bit k of the string being bit k % 8 of byte
// k / 8 (for b = 3 a code may straddle two bytes). A code is sign-magnitude: bits 0..b-2
// hold m (the magnitude index, ascending), bit b-1 the sign (1: -L_m). So a block with
// n16 = 0 is all zero bytes.
//
// Exactness: n16 has 11 significant bits and L 24, so n16 * L has at most 35: float64
// holds it (decode_exact), and decode's FP32 product is its one correct rounding.
//
// Not idempotent (kIdempotent): the decoded block's norm is n16 ||L(codes)||, not n16,
// so re-encoding it stores another norm. Not repeat-invariant (kRepeatInvariant): the
// norm counts every copy of an element, so a row's padded last block (row_blocks.h)
// counts the repeated last element B - real + 1 times.
//
// Out of domain: a NaN element counts as 0 in the norm and is quantized as 0 would be
// (code 0), so the block is byte for byte the block with 0 in its place; a block whose
// norm reaches 65520 (or overflows FP32) stores n16 = +Inf, and its elements decode to
// +Inf (t = x / Inf = +-0 takes code 0; an Inf element's NaN t takes code 0 too).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/rounding.h"
#include "reference/numeric/convert.h"
#include "reference/numeric/ieee.h"

namespace kvfid::ref::quant {

// The positive centroids c_m (ascending) of the Lloyd-Max quantizer of N(0, 1) with 2^b
// levels, row b - 1 (the 2^(b-1) negative ones mirror them): the fixed point of Lloyd's
// iteration, computed in float64 and rounded to 10 decimals (b = 1: sqrt(2 / pi)). They
// agree with Max's 1960 table to its 4 digits; turbo_mse_test.cpp recomputes them.
inline constexpr double kGaussianCentroids[4][8] = {
    {0.7978845608},
    {0.4527800346, 1.5104176085},
    {0.2450941789, 0.7560052812, 1.3439092785, 2.1519457045},
    {0.1283950299, 0.3880482995, 0.6567591185, 0.9423404565, 1.2562311973, 1.6180463860, 2.0690172265, 2.7325895710},
};

template <int kBits, int kBlockSize>
struct TurboMse {
  static_assert(kBits >= 1 && kBits <= 4);
  static constexpr int kBlock = kBlockSize;
  static constexpr int kBytes = 2 + kBlock * kBits / 8;
  static_assert(kBlock * kBits % 8 == 0);
  static constexpr bool kExhaustive = false;  // the norm is not pinned: turbo_mse_test.cpp covers every code
  static constexpr bool kIdempotent = false;
  static constexpr bool kRepeatInvariant = false;
  static constexpr int kMagnitudes = 1 << (kBits - 1);  // levels per sign; the sign is code bit b-1

  // 2^j for kBlock = 2 * 4^j: t * kToUnit is on the B = 2 scale of the tables, and
  // a level there times kFromUnit = 2^-j is the level at kBlock.
  static constexpr float kToUnit = [] {
    float s = 1.0f;
    int b = 2;
    for (; b < kBlock; b *= 4) s *= 2.0f;
    return b == kBlock ? s : 0.0f;
  }();
  static_assert(kToUnit > 0, "kBlock must be 2 * 4^j");
  static constexpr float kFromUnit = 1.0f / kToUnit;

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    const std::uint16_t n16 = norm16(x);
    store_u16(block, n16);
    for (int k = 2; k < kBytes; ++k) block[k] = 0;
    const float n = num::f16_to_f32(n16);
    if (n == 0.0f) return;
    for (int i = 0; i < kBlock; ++i) put(block + 2, i, code_of(num::div(zero_if_nan(x[i]), n) * kToUnit));
  }

  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    return num::f16_to_f32(load_u16(block)) * level(get(block + 2, i));
  }

  static double decode_exact(const std::uint8_t* block, int i, const CodecParams&) {
    return f16_to_double(load_u16(block)) * double(level(get(block + 2, i)));  // 35 bits: exact
  }

  // With s = n16 (as stored; the bound recomputes it) and t* = x_i / s, encode's t =
  // fl(t*) and u = t 2^j: |u - u*| <= e = 2^-24 |u*| + 2^(j-150) (FP32 division: relative
  // 2^-24, absolute half the subnormal spacing 2^-150 below 2^-126; the 2^j is exact).
  // The chosen level L_p is the one nearest u (see above; the sign of u is that of u*),
  // so |u* - L_p| <= |u - L_p| + e <= min_m |u - L_m| + e <= min_m |u* - L_m| + 2e.
  // Scaled back by s 2^-j (s |u*| 2^-j = |x_i|):
  //   |x_i - s L_p| <= min over the 2^b levels |x_i - s L| + 2^-23 |x_i| + 2^-149 s.
  // n16 = 0 decodes to zeros: the error is |x_i|. n16 = +Inf (norm >= 65520, out of
  // the format's range) bounds nothing: +Inf.
  static double error_bound(const float* x, int i, const CodecParams&) {
    const double s = f16_to_double(norm16(x));
    const double xi = x[i];
    if (s == 0) return std::fabs(xi);
    if (std::isinf(s)) return std::numeric_limits<double>::infinity();
    double nearest = std::numeric_limits<double>::infinity();
    for (int code = 0; code < 2 * kMagnitudes; ++code) nearest = std::min(nearest, std::fabs(xi - s * level(code)));
    return nearest + 0x1p-23 * std::fabs(xi) + 0x1p-149 * s;
  }

  // The level of a code: +-L_m = +-unit_level(m) 2^-j (exact), sign from bit b-1.
  KVFID_HD static float level(int code) {
    const float l = unit_level(code & (kMagnitudes - 1)) * kFromUnit;
    return code & kMagnitudes ? -l : l;
  }

  // The FP16 norm encode stores (NaN elements count as 0).
  KVFID_HD static std::uint16_t norm16(const float* x) {
    float sum = 0.0f;
    for (int i = 0; i < kBlock; ++i) {
      const float v = zero_if_nan(x[i]);
      sum = num::fma(v, v, sum);
    }
    return num::f32_to_f16(num::sqrt(sum));
  }

 private:
  KVFID_HD static float zero_if_nan(float v) { return v == v ? v : 0.0f; }

  // fl32(c_m / sqrt(2)): the levels at B = 2, m ascending.
  KVFID_HD static float unit_level(int m) {
    if constexpr (kBits == 1) {
      return 0x1.20dd76p-1f;
    } else if constexpr (kBits == 2) {
      constexpr float l[] = {0x1.47d908p-2f, 0x1.116a3p+0f};
      return l[m];
    } else if constexpr (kBits == 3) {
      constexpr float l[] = {0x1.62ef2ep-3f, 0x1.11b402p-1f, 0x1.e68c1p-1f, 0x1.858b36p+0f};
      return l[m];
    } else {
      static_assert(kBits == 4);
      constexpr float l[] = {0x1.73df2ap-4f, 0x1.18fa1cp-2f, 0x1.db8b5ep-2f, 0x1.5529e8p-1f,
                             0x1.c6cde4p-1f, 0x1.24e5cep+0f, 0x1.76883ap+0f, 0x1.eea6ccp+0f};
      return l[m];
    }
  }

  // The least float >= (unit_level(m) + unit_level(m + 1)) / 2, m < kMagnitudes - 1.
  KVFID_HD static float unit_threshold(int m) {
    if constexpr (kBits == 2) {
      return 0x1.636072p-1f;
    } else if constexpr (kBits == 3) {
      constexpr float t[] = {0x1.6a6fcep-2f, 0x1.7c200ap-1f, 0x1.3c68ap+0f};
      return t[m];
    } else {
      static_assert(kBits == 4);
      constexpr float t[] = {0x1.75f1e8p-3f, 0x1.7a42bep-2f, 0x1.2177ccp-1f, 0x1.8dfbe6p-1f,
                             0x1.04266p+0f,  0x1.4db704p+0f, 0x1.b29784p+0f};
      return t[m];
    }
  }

  // The code of the level nearest u (on the B = 2 scale). A NaN u (an Inf element over
  // an Inf norm) gets code 0.
  KVFID_HD static int code_of(float u) {
    const float a = abs_of(u);
    int m = 0;
    if constexpr (kMagnitudes > 1)
      while (m + 1 < kMagnitudes && a >= unit_threshold(m)) ++m;
    return u < 0.0f ? m | kMagnitudes : m;
  }

  // Code i of the bit string q (see Layout); put ORs it into a zeroed string.
  KVFID_HD static int get(const std::uint8_t* q, int i) {
    const int bit = i * kBits, byte = bit / 8, shift = bit % 8;
    unsigned v = q[byte];
    if (shift + kBits > 8) v |= unsigned(q[byte + 1]) << 8;
    return int((v >> shift) & ((1u << kBits) - 1));
  }
  KVFID_HD static void put(std::uint8_t* q, int i, int code) {
    const int bit = i * kBits, byte = bit / 8, shift = bit % 8;
    const unsigned v = unsigned(code) << shift;
    q[byte] = std::uint8_t(q[byte] | (v & 0xFFu));
    if (shift + kBits > 8) q[byte + 1] = std::uint8_t(q[byte + 1] | (v >> 8));
  }
};

struct Tq1_32 : TurboMse<1, 32> {
  static constexpr const char* kName = "tq1_32";
};
struct Tq2_32 : TurboMse<2, 32> {
  static constexpr const char* kName = "tq2_32";
};
struct Tq3_32 : TurboMse<3, 32> {
  static constexpr const char* kName = "tq3_32";
};
struct Tq4_32 : TurboMse<4, 32> {
  static constexpr const char* kName = "tq4_32";
};
struct Tq1_128 : TurboMse<1, 128> {
  static constexpr const char* kName = "tq1_128";
};
struct Tq2_128 : TurboMse<2, 128> {
  static constexpr const char* kName = "tq2_128";
};
struct Tq3_128 : TurboMse<3, 128> {
  static constexpr const char* kName = "tq3_128";
};
struct Tq4_128 : TurboMse<4, 128> {
  static constexpr const char* kName = "tq4_128";
};

}  // namespace kvfid::ref::quant
