#pragma once
// Symmetric integer blocks for the KV cache, quantized along head_dim:
// int8_32, int8_64 (q in [-127, 127]) and int4_32, int4_64 (q in [-7, 7]).
//   d  = amax / qmax in float32, id = 1/d; value = q * fp16(d)
//   q  = round(x * id), ties to even (the IEEE default, as numpy and torch round)
// Like ggml, the quants come from the float32 d and only the stored d is rounded to
// FP16. One difference, for canonical bytes: when d rounds to 0 in FP16 (amax <=
// qmax * 2^-25) id is 0, so the block stores all-zero quants -- it decodes to zeros
// either way, and its decode re-encodes to the same bytes (ggml's Q8_0 keeps the
// quants of the float32 d there).
// |x * id| <= qmax (1 + 3 * 2^-24) < qmax + 1/2 whenever id != 0 (d is then a normal
// float, see error_bound), so q never leaves [-qmax, qmax].
//
// Layout (little-endian): FP16 d (2 bytes), then the quants:
//   int8: int8 q[kBlock], two's complement;
//   int4: uint8 qs[kBlock / 2], q + 8 (offset binary, 1..15) with element j in the low
//         nibble of qs[j] and element j + kBlock/2 in the high nibble (ggml's order).
// Out of domain: a NaN element is quantized as 0 would be (q = 0) and ignored by amax;
// a block with amax / qmax >= 65520 overflows the FP16 scale (decodes to +-Inf or NaN).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "reference/numeric/convert.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/rounding.h"

namespace kvfid::ref::quant {

template <int kBits, int kBlockSize>
struct SymmetricInt {
  static_assert(kBits == 8 || kBits == 4);
  static_assert(kBlockSize % 2 == 0);
  static constexpr int kBlock = kBlockSize;
  static constexpr int kBytes = 2 + kBlock * kBits / 8;
  static constexpr bool kExhaustive = true;  // 2 qmax + 1 levels per scale
  static constexpr int kQMax = (1 << (kBits - 1)) - 1;

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    float amax = 0.0f;
    for (int i = 0; i < kBlock; ++i) amax = num::max(amax, abs_of(x[i]));  // skips NaN: amax < NaN is false
    const float d = num::div(amax, float(kQMax));
    const std::uint16_t stored = num::f32_to_f16(d);
    const float id = (stored & 0x7FFFu) != 0 ? num::div(1.0f, d) : 0.0f;
    store_u16(block, stored);
    // round_half_even(NaN) is 0: a NaN element stores the quant of 0.
    if constexpr (kBits == 8) {
      for (int i = 0; i < kBlock; ++i) block[2 + i] = std::uint8_t(std::int8_t(round_half_even(x[i] * id)));
    } else {
      for (int j = 0; j < kBlock / 2; ++j)
        block[2 + j] = std::uint8_t((round_half_even(x[j] * id) + 8) | ((round_half_even(x[j + kBlock / 2] * id) + 8) << 4));
    }
  }

  // q has at most 7 significant bits and d 11: the product is exact in FP32.
  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    return float(get(block, i)) * num::f16_to_f32(load_u16(block));
  }

  static double decode_exact(const std::uint8_t* block, int i, const CodecParams&) {
    return double(get(block, i)) * f16_to_double(load_u16(block));  // 18 bits: exact
  }

  // With D = amax / qmax (real) and d = fl(D) (normal when dh != 0: dh != 0 needs
  // d > 2^-25): |x - dh q| <= |x - d q| + |d - dh| |q|.
  //  * id = fl(1/d) and x * id each round by <= 2^-24, so |x*id - x/d| <= 3 * 2^-24 qmax
  //    (|x/d| <= qmax (1 + 2^-24)); RNE adds 1/2: |x - d q| <= d (1/2 + 3 * 2^-24 qmax)
  //    <= D (1/2 + 2^-22 qmax).
  //  * |d - dh| <= r16(d) (FP16's rounding: d 2^-11 for a normal d, 2^-25 below 2^-14),
  //    d <= D (1 + 2^-23); and |q| <= min(qmax, |x|/D + 1).
  // When dh = 0 the block decodes to zeros and the error is |x| <= D min(qmax, |x|/D):
  // the second term covers it, as r16 = 2^-25 >= d there.
  static double error_bound(const float* x, int i, const CodecParams&) {
    double amax = 0;
    for (int k = 0; k < kBlock; ++k) amax = std::max(amax, std::fabs(double(x[k])));
    if (amax == 0) return 0;
    const double D = amax / kQMax;
    const double scale_rounding = fp16_rounding(D * (1 + 0x1p-23));
    const double q_max = std::min(double(kQMax), std::fabs(double(x[i])) / D + 1);
    return D * (0.5 + 0x1p-22 * kQMax) + scale_rounding * q_max;
  }

 private:
  KVFID_HD static int get(const std::uint8_t* block, int i) {
    if constexpr (kBits == 8) return std::int8_t(block[2 + i]);
    return packed_nibble<kBlock>(block + 2, i) - 8;
  }
};

struct Int8_32 : SymmetricInt<8, 32> {
  static constexpr const char* kName = "int8_32";
};
struct Int8_64 : SymmetricInt<8, 64> {
  static constexpr const char* kName = "int8_64";
};
struct Int4_32 : SymmetricInt<4, 32> {
  static constexpr const char* kName = "int4_32";
};
struct Int4_64 : SymmetricInt<4, 64> {
  static constexpr const char* kName = "int4_64";
};

}  // namespace kvfid::ref::quant
