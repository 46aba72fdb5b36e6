#pragma once
// Asymmetric integer blocks for the KV cache, quantized along head_dim, with an FP16
// scale and an FP16 minimum: int8a_32, int8a_64 (q in [0, 255]) and int4a_32,
// int4a_64 (q in [0, 15]).
//   lo, hi = min and max of the block;  d = (hi - lo) / qmax in float32
//   dh = fp16(d), mh = fp16(lo);        value = q * dh + mh
//   q  = clamp(round((x - mh) / dh), 0, qmax), ties to even, in FP32 (x - mh and the
//        division each round once); the first element equal to lo gets q = 0 and the
//        first equal to hi gets q = qmax; q = 0 everywhere when dh = 0.
//
// Why the quants come from the STORED dh and mh (not the float32 d and lo, as ggml's
// Q4_1 does): every element then lands on the nearest point of the grid the block
// actually holds, so the FP16 roundings of d and lo cost at most the clipping at the
// grid's ends, and the bound is max(half a step, clipping) rather than the sum
// half a step + qmax |d - dh| + |lo - mh| (about 0.5 vs 0.69 steps for int8a).
// Why the ends are pinned: the decoded block then spans exactly [mh, mh + qmax dh],
// whose re-encoding gives back mh, dh and every q. Without the pin, a block whose
// minimum is large against its spread (|lo| 2^-11 > dh / 2: an offset-dominated key
// channel, say) would give its minimum q >= 1, and the decoded block would re-encode
// with another minimum: encode(decode(encode(x))) != encode(x) (the derived
// idempotence test fails on such blocks without the pin). Pinning costs nothing in the
// bound: the pinned elements' errors, |lo - mh| and |hi - mh - qmax dh|, are the
// clipping terms.
// A minimum that rounds to -0 in FP16 is stored as +0 (same values, canonical bytes).
//
// decode in FP32 is fma(q, dh, mh): one rounding of the exact q dh + mh.
// decode_exact is that exact value: every FP16 number is an integer multiple of 2^-24,
// so is q dh, and |q dh + mh| <= 256 * 65504 < 2^24: an integer multiple of 2^-24 below
// 2^24 has at most 48 significant bits, exact in float64.
//
// Layout (little-endian): FP16 dh, FP16 mh (4 bytes), then the quants:
//   int8a: uint8 q[kBlock];
//   int4a: uint8 qs[kBlock / 2], element j in the low nibble of qs[j] and element
//          j + kBlock/2 in the high nibble (ggml's order).
// Out of domain: a NaN element is ignored by lo and hi and quantized as 0 would be
// (a block of only NaN encodes as zeros); values whose lo or (hi - lo)/qmax reach
// 65520 overflow the FP16 fields (decode gives +-Inf or NaN).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "reference/numeric/convert.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/rounding.h"

namespace kvfid::ref::quant {

template <int kBits, int kBlockSize>
struct AsymmetricInt {
  static_assert(kBits == 8 || kBits == 4);
  static_assert(kBlockSize % 2 == 0);
  static constexpr int kBlock = kBlockSize;
  static constexpr int kBytes = 4 + kBlock * kBits / 8;
  static constexpr bool kExhaustive = true;  // qmax + 1 levels per scale
  static constexpr int kQMax = (1 << kBits) - 1;

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    int lo_at = -1, hi_at = -1;
    for (int i = 0; i < kBlock; ++i) {
      if (x[i] != x[i]) continue;
      if (lo_at < 0 || x[i] < x[lo_at]) lo_at = i;
      if (hi_at < 0 || x[hi_at] < x[i]) hi_at = i;
    }
    const float lo = lo_at < 0 ? 0.0f : x[lo_at];
    const float hi = hi_at < 0 ? 0.0f : x[hi_at];
    std::uint16_t m16 = num::f32_to_f16(lo);
    if (m16 == 0x8000u) m16 = 0;
    const std::uint16_t d16 = num::f32_to_f16(num::div(hi - lo, float(kQMax)));
    store_u16(block, d16);
    store_u16(block + 2, m16);
    const float m = num::f16_to_f32(m16);
    const float step = num::f16_to_f32(d16);
    const auto quant = [&](int i) {
      if (step == 0.0f) return 0;
      if (i == lo_at) return 0;
      if (i == hi_at) return kQMax;
      const int q = round_half_even(num::div((x[i] == x[i] ? x[i] : 0.0f) - m, step));
      return q < 0 ? 0 : q > kQMax ? kQMax : q;
    };
    if constexpr (kBits == 8) {
      for (int i = 0; i < kBlock; ++i) block[4 + i] = std::uint8_t(quant(i));
    } else {
      for (int j = 0; j < kBlock / 2; ++j) block[4 + j] = std::uint8_t(quant(j) | (quant(j + kBlock / 2) << 4));
    }
  }

  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    return num::fma(float(get(block, i)), num::f16_to_f32(load_u16(block)), num::f16_to_f32(load_u16(block + 2)));
  }

  static double decode_exact(const std::uint8_t* block, int i, const CodecParams&) {
    return double(get(block, i)) * f16_to_double(load_u16(block)) + f16_to_double(load_u16(block + 2));
  }

  // With R = hi - lo, D = R / qmax (reals):
  //  E_d >= |dh - D|: fl(R) and the division each round by 2^-24 (2^-149 absolute if
  //       d is subnormal), then FP16 rounds d by r16(d) (d 2^-11 for normal d, 2^-25
  //       below 2^-14): E_d = D 2^-22 + 2^-148 + r16(D (1 + 2^-22) + 2^-148).
  //  E_m >= |mh - lo| = r16(|lo|).
  // An element quantized on the grid without clipping: t = fl(fl(x - mh) / dh) is within
  // 2.01 * 2^-24 |t*| of t* = (x - mh)/dh, |t*| <= qmax + 1, and RNE adds 1/2:
  //   |x - q dh - mh| = dh |t* - q| <= (D + E_d) (1/2 + (qmax + 1) 2^-22).
  // Clipped at 0 (t* < 0, so lo <= x < mh) or the pinned minimum: error <= mh - lo or
  // |lo - mh|, <= E_m. Clipped at qmax (x > mh + qmax dh) or the pinned maximum:
  //   |x - mh - qmax dh| <= |hi - mh - qmax dh| <= |lo - mh| + qmax |D - dh|
  //                      <= E_m + qmax E_d.
  // dh = 0 (d <= 2^-25): q = 0, error |x - mh| <= R + E_m <= qmax E_d + E_m, since E_d
  // >= 2^-25 + D 2^-22 >= D there.
  // Hence bound = max((D + E_d)(1/2 + (qmax + 1) 2^-22), E_m + qmax E_d).
  static double error_bound(const float* x, int, const CodecParams&) {
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < kBlock; ++k) {
      if (x[k] != x[k]) continue;
      lo = std::min(lo, double(x[k]));
      hi = std::max(hi, double(x[k]));
    }
    if (lo > hi) return 0;  // every element NaN
    const double D = (hi - lo) / kQMax;
    const double E_d = D * 0x1p-22 + 0x1p-148 + fp16_rounding(D * (1 + 0x1p-22) + 0x1p-148);
    const double E_m = fp16_rounding(std::fabs(lo));
    return std::max((D + E_d) * (0.5 + (kQMax + 1) * 0x1p-22), E_m + kQMax * E_d);
  }

 private:
  KVFID_HD static int get(const std::uint8_t* block, int i) {
    if constexpr (kBits == 8) return block[4 + i];
    return packed_nibble<kBlock>(block + 4, i);
  }
};

struct Int8a_32 : AsymmetricInt<8, 32> {
  static constexpr const char* kName = "int8a_32";
};
struct Int8a_64 : AsymmetricInt<8, 64> {
  static constexpr const char* kName = "int8a_64";
};
struct Int4a_32 : AsymmetricInt<4, 32> {
  static constexpr const char* kName = "int4a_32";
};
struct Int4a_64 : AsymmetricInt<4, 64> {
  static constexpr const char* kName = "int4a_64";
};

}  // namespace kvfid::ref::quant
