#pragma once
// TurboQuant's MSE quantizer (Zandieh et al. 2025) for the KV cache: tq1_32 ... tq4_128,
// b = 1..4 bits per element over blocks of B = 32 or 128 elements (a KV head row or a
// part of one), and its fractional rates tq2.5_* and tq3.5_* (below). TurboQuant applies
// it after a random rotation of the vector, which
// makes every coordinate of the unit vector x / ||x|| distributed like a coordinate of a
// uniform random point of the sphere: sqrt(B) times it is close to N(0, 1). Each
// coordinate is then quantized with the Lloyd-Max (MSE-optimal) scalar quantizer of
// N(0, 1), scaled by 1 / sqrt(B). The rotation is the caller's; the codec quantizes
// the block it is given.
//   n   = sqrt(sum x_i^2): FP32, s = fma(x_i, x_i, s) for i = 0, 1, ... from s = +0, then
//         the correctly rounded sqrt; the block stores n16 = fp16(n)
//   t_i = x_i / n16 in FP32 (all codes 0 when n16 = 0)
//   code_i = the level nearest t_i among +-L_m, L_m = fl32(c_m / sqrt(B)), with c_m the
//         positive Lloyd-Max centroids (kGaussianCentroids) of element i's code width;
//         value = n16 * L(code)
//
// Fractional rates by an outlier split (TurboQuant's 2.5 and 3.5 bits): TurboMse<bh,
// bl, H, B> codes elements [0, H) with bh-bit codes and [H, B) with bl-bit codes, all
// under the one norm n16 and with the levels of the whole block size B (a channel's
// levels depend on B, the dimension of the sphere, not on how many channels share its
// width). The uniform formats are bh = bl (H = 0); tq{b}.5_B is bh = b + 1, bl = b,
// H = B / 2: the first half of the block's channels at b + 1 bits. The set is fixed,
// part of the format (no per-block channel map is stored): after TurboQuant's random
// rotation every channel is distributed alike, so any fixed half serves as well as
// another; without a rotation, the first half is an arbitrary choice, not a selection
// of the outlier channels (TurboQuant picks those from the data; a fixed set is what a
// block format can hold). Bits per element, the FP16 norm included:
//   tq{b}_32 = b + 1/2, tq{b}_128 = b + 1/8;
//   tq2.5_32 = (16 + 16*3 + 16*2)/32 = 3.0,    tq3.5_32 = (16 + 16*4 + 16*3)/32 = 4.0,
//   tq2.5_128 = (16 + 64*3 + 64*2)/128 = 2.625, tq3.5_128 = (16 + 64*4 + 64*3)/128 = 3.625.
// The split's distortion is the channel-weighted mean of the two widths' per-coordinate
// distortions (turbo_mse_test.cpp checks it).
//
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
// Layout (little-endian): FP16 n16 (2 bytes), then the kBlock codes as one bit string:
// element i's code in bits [o_i, o_i + w_i), w_i = bh and o_i = i bh for i < H, w_i = bl
// and o_i = H bh + (i - H) bl after (the uniform formats: i b), bit k of the string
// being bit k % 8 of byte k / 8 (a 3-bit code may straddle two bytes). A code is
// sign-magnitude: bits 0..w-2 hold m (the magnitude index, ascending), bit w-1 the sign
// (1: -L_m). So a block with n16 = 0 is all zero bytes.
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

template <int kBitsHiV, int kBitsLoV, int kHiV, int kBlockSize>
struct TurboMse {
  static constexpr int kBitsHi = kBitsHiV;  // code width of elements [0, kHi)
  static constexpr int kBitsLo = kBitsLoV;  // code width of elements [kHi, kBlock)
  static constexpr int kHi = kHiV;
  static_assert(kBitsHi >= 1 && kBitsHi <= 4 && kBitsLo >= 1 && kBitsLo <= 4);
  static constexpr int kBlock = kBlockSize;
  static_assert(kHi >= 0 && kHi <= kBlock);
  static constexpr int kCodeBits = kHi * kBitsHi + (kBlock - kHi) * kBitsLo;  // the bit string's length
  static_assert(kCodeBits % 8 == 0);
  static constexpr int kBytes = 2 + kCodeBits / 8;
  static constexpr bool kExhaustive = false;  // the norm is not pinned: turbo_mse_test.cpp covers every code
  static constexpr bool kIdempotent = false;
  static constexpr bool kRepeatInvariant = false;

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

  // Element i's code width and the offset of its code in the bit string (see Layout).
  KVFID_HD static constexpr int bits_at(int i) { return i < kHi ? kBitsHi : kBitsLo; }
  KVFID_HD static constexpr int offset_at(int i) { return i < kHi ? i * kBitsHi : kHi * kBitsHi + (i - kHi) * kBitsLo; }

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    const std::uint16_t n16 = norm16(x);
    store_u16(block, n16);
    for (int k = 2; k < kBytes; ++k) block[k] = 0;
    const float n = num::f16_to_f32(n16);
    if (n == 0.0f) return;
    for (int i = 0; i < kBlock; ++i) {
      const float u = num::div(zero_if_nan(x[i]), n) * kToUnit;
      put(block + 2, i, i < kHi ? code_of<kBitsHi>(u) : code_of<kBitsLo>(u));
    }
  }

  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    return num::f16_to_f32(load_u16(block)) * level_at(i, get(block + 2, i));
  }

  static double decode_exact(const std::uint8_t* block, int i, const CodecParams&) {
    return f16_to_double(load_u16(block)) * double(level_at(i, get(block + 2, i)));  // 35 bits: exact
  }

  // With s = n16 (as stored; the bound recomputes it) and t* = x_i / s, encode's t =
  // fl(t*) and u = t 2^j: |u - u*| <= e = 2^-24 |u*| + 2^(j-150) (FP32 division: relative
  // 2^-24, absolute half the subnormal spacing 2^-150 below 2^-126; the 2^j is exact).
  // The chosen level L_p is the one nearest u (see above; the sign of u is that of u*),
  // so |u* - L_p| <= |u - L_p| + e <= min_m |u - L_m| + e <= min_m |u* - L_m| + 2e.
  // Scaled back by s 2^-j (s |u*| 2^-j = |x_i|):
  //   |x_i - s L_p| <= min over element i's 2^b levels |x_i - s L| + 2^-23 |x_i| + 2^-149 s.
  // n16 = 0 decodes to zeros: the error is |x_i|. n16 = +Inf (norm >= 65520, out of
  // the format's range) bounds nothing: +Inf.
  static double error_bound(const float* x, int i, const CodecParams&) {
    const double s = f16_to_double(norm16(x));
    const double xi = x[i];
    if (s == 0) return std::fabs(xi);
    if (std::isinf(s)) return std::numeric_limits<double>::infinity();
    double nearest = std::numeric_limits<double>::infinity();
    for (int code = 0; code < 2 << (bits_at(i) - 1); ++code)
      nearest = std::min(nearest, std::fabs(xi - s * level_at(i, code)));
    return nearest + 0x1p-23 * std::fabs(xi) + 0x1p-149 * s;
  }

  // The level of element i's code: that of its width (bits_at).
  KVFID_HD static float level_at(int i, int code) { return i < kHi ? level<kBitsHi>(code) : level<kBitsLo>(code); }

  // The level of a kBits-bit code: +-L_m = +-unit_level(m) 2^-j (exact), sign from bit
  // kBits-1.
  template <int kBits>
  KVFID_HD static float level(int code) {
    constexpr int magnitudes = 1 << (kBits - 1);
    const float l = unit_level<kBits>(code & (magnitudes - 1)) * kFromUnit;
    return code & magnitudes ? -l : l;
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

  // Code i of the bit string q (see Layout); put ORs it into a zeroed string.
  KVFID_HD static int get(const std::uint8_t* q, int i) {
    const int width = bits_at(i), bit = offset_at(i), byte = bit / 8, shift = bit % 8;
    unsigned v = q[byte];
    if (shift + width > 8) v |= unsigned(q[byte + 1]) << 8;
    return int((v >> shift) & ((1u << width) - 1));
  }
  KVFID_HD static void put(std::uint8_t* q, int i, int code) {
    const int width = bits_at(i), bit = offset_at(i), byte = bit / 8, shift = bit % 8;
    const unsigned v = unsigned(code) << shift;
    q[byte] = std::uint8_t(q[byte] | (v & 0xFFu));
    if (shift + width > 8) q[byte + 1] = std::uint8_t(q[byte + 1] | (v >> 8));
  }

  KVFID_HD static float zero_if_nan(float v) { return v == v ? v : 0.0f; }

 private:
  // fl32(c_m / sqrt(2)): the levels at B = 2, m ascending.
  template <int kBits>
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

  // The least float >= (unit_level(m) + unit_level(m + 1)) / 2, m < 2^(kBits-1) - 1.
  template <int kBits>
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

  // The kBits-bit code of the level nearest u (on the B = 2 scale). A NaN u (an Inf
  // element over an Inf norm) gets code 0.
  template <int kBits>
  KVFID_HD static int code_of(float u) {
    constexpr int magnitudes = 1 << (kBits - 1);
    const float a = abs_of(u);
    int m = 0;
    if constexpr (magnitudes > 1)
      while (m + 1 < magnitudes && a >= unit_threshold<kBits>(m)) ++m;
    return u < 0.0f ? m | magnitudes : m;
  }
};

// The uniform formats: every element at b bits (kHi = 0).
template <int kBits, int kBlockSize>
using TurboMseUniform = TurboMse<kBits, kBits, 0, kBlockSize>;
// The outlier-split formats: the first half of the block at b + 1 bits, the rest at b.
template <int kBits, int kBlockSize>
using TurboMseSplit = TurboMse<kBits + 1, kBits, kBlockSize / 2, kBlockSize>;

struct Tq1_32 : TurboMseUniform<1, 32> {
  static constexpr const char* kName = "tq1_32";
};
struct Tq2_32 : TurboMseUniform<2, 32> {
  static constexpr const char* kName = "tq2_32";
};
struct Tq3_32 : TurboMseUniform<3, 32> {
  static constexpr const char* kName = "tq3_32";
};
struct Tq4_32 : TurboMseUniform<4, 32> {
  static constexpr const char* kName = "tq4_32";
};
struct Tq1_128 : TurboMseUniform<1, 128> {
  static constexpr const char* kName = "tq1_128";
};
struct Tq2_128 : TurboMseUniform<2, 128> {
  static constexpr const char* kName = "tq2_128";
};
struct Tq3_128 : TurboMseUniform<3, 128> {
  static constexpr const char* kName = "tq3_128";
};
struct Tq4_128 : TurboMseUniform<4, 128> {
  static constexpr const char* kName = "tq4_128";
};
struct Tq2p5_32 : TurboMseSplit<2, 32> {  // 3.0 bits per element with the norm
  static constexpr const char* kName = "tq2.5_32";
};
struct Tq3p5_32 : TurboMseSplit<3, 32> {  // 4.0
  static constexpr const char* kName = "tq3.5_32";
};
struct Tq2p5_128 : TurboMseSplit<2, 128> {  // 2.625
  static constexpr const char* kName = "tq2.5_128";
};
struct Tq3p5_128 : TurboMseSplit<3, 128> {  // 3.625
  static constexpr const char* kName = "tq3.5_128";
};

}  // namespace kvfid::ref::quant
