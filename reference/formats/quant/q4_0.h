#pragma once
// ggml's Q4_0, byte for byte: blocks of 32 as { FP16 d; uint8 qs[16] } (18 bytes),
// element j in the low nibble of qs[j] and element j + 16 in the high nibble.
//   M  = the first element of largest magnitude, with its sign
//   d  = M / -8 in float32, id = 1/d (0 when d is 0)
//   q  = min(15, trunc(x * id + 8.5)), in float32 operations: x*id and + 8.5 each round
//   value = (q - 8) * fp16(d)
// The quants come from the float32 d; only the stored d is rounded to FP16. M itself
// gets q = 0 (M * id = -8 up to roundings, + 8.5 truncates to 0), so the extreme
// element is kept up to d's FP16 rounding; an element of the opposite sign and the same
// magnitude reaches x * id = +8 and is clamped to q = 15 (+7 steps): one full step off.
// trunc(v + 8.5) - 8 is floor(v + 1/2): ties (v = k + 1/2) round up, toward +inf.
//
// Outside the domain (defined on host and device, where ggml's int8 cast is not): a
// NaN element is quantized as 0 would be (q = 8) and never chosen as M; when |d| <
// 2^-128, id overflows to Inf, x * id is +-Inf or NaN and q saturates into [0, 15] --
// such a d is 0 in FP16, so the block decodes to zeros whatever q holds.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "reference/numeric/convert.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/rounding.h"

namespace kvfid::ref::quant {

struct Q4_0 {
  static constexpr const char* kName = "q4_0";
  static constexpr int kBlock = 32;
  static constexpr int kBytes = 2 + kBlock / 2;
  static constexpr bool kExhaustive = true;  // 16 quant levels per scale

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    float amax = 0.0f;
    float extreme = 0.0f;  // M
    for (int i = 0; i < kBlock; ++i) {
      if (amax < abs_of(x[i])) {  // strict: the first of equal magnitudes wins, as in ggml
        amax = abs_of(x[i]);
        extreme = x[i];
      }
    }
    const float d = num::div(extreme, -8.0f);
    const float id = d != 0.0f ? num::div(1.0f, d) : 0.0f;
    store_u16(block, num::f32_to_f16(d));
    for (int j = 0; j < kBlock / 2; ++j)
      block[2 + j] = std::uint8_t(quant(x[j], id) | (quant(x[j + kBlock / 2], id) << 4));
  }

  // (q - 8) has 4 significant bits and d 11: the product is exact in FP32.
  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    return float(packed_nibble<kBlock>(block + 2, i) - 8) * num::f16_to_f32(load_u16(block));
  }

  static double decode_exact(const std::uint8_t* block, int i, const CodecParams&) {
    return double(packed_nibble<kBlock>(block + 2, i) - 8) * f16_to_double(load_u16(block));  // 15 bits: exact
  }

  // With D = |M|/8 and v = x/d = -8x/M (M != 0; M = 0 means an all-zero block, exact):
  // |x - dh (q-8)| <= |d| |v - (q-8)| + |d - dh| |q - 8|.
  //  * dh != 0 needs |d| >= 2^-25, so d = M/-8 is a normal float, exact: |d| = D.
  //    The computed v' = fl(x fl(1/d)) is within (2 + 2^-24) 2^-24 |v| < 2^-19 of v
  //    (|v| <= 8) and s = fl(v' + 8.5) within 2^-20 (s < 32) of v' + 8.5. Unclamped,
  //    trunc(s) - 8 lies in (s - 9, s - 8], so |v - (q-8)| <= 1/2 + 2^-20 + 2^-19;
  //    clamped at q = 15 (trunc(s) = 16 means v > 7.5 - 2^-18), |v - (q-8)| = v - 7. Hence
  //    |v - (q-8)| <= max(1/2, v - 7) + 2^-18.
  //  * |d - dh| <= r16(|d|), FP16's rounding: |d| 2^-11 for a normal d, 2^-25 (half the
  //    subnormal spacing) below 2^-14; |d| <= D (1 + 2^-23) covers a subnormal float d.
  //  * |q - 8| <= min(8, |v| + 1).
  // When dh = 0 (|d| <= 2^-25) the block decodes to zeros and the error is |x| = D |v|;
  // the second term alone covers it: r16 = 2^-25 >= D and min(8, |v| + 1) >= |v|.
  static double error_bound(const float* x, int i, const CodecParams&) {
    double extreme = 0;
    for (int k = 0; k < kBlock; ++k)
      if (std::fabs(extreme) < std::fabs(double(x[k]))) extreme = x[k];
    if (extreme == 0) return 0;
    const double D = std::fabs(extreme) / 8;
    const double v = -8 * double(x[i]) / extreme;
    const double scale_rounding = fp16_rounding(D * (1 + 0x1p-23));
    return D * (std::max(0.5, v - 7) + 0x1p-18) + scale_rounding * std::min(8.0, std::fabs(v) + 1);
  }

 private:
  // min(15, trunc(x * id + 8.5)); the lower clamp only acts when id is Inf (see above).
  KVFID_HD static int quant(float x, float id) {
    const float v = (x == x ? x : 0.0f) * id;
    const int q = trunc_saturating(v + 8.5f);
    return q < 0 ? 0 : q > 15 ? 15 : q;
  }
};

}  // namespace kvfid::ref::quant
