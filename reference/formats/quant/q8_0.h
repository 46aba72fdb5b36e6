#pragma once
// ggml's Q8_0, byte for byte: blocks of 32 as { FP16 d; int8 qs[32] } (34 bytes).
// d = amax / 127 in float32, id = 1/d (0 when d is 0), q = round-half-away(x * id);
// only the stored d is rounded to FP16, the quants come from the float32 d.
// Out of domain (defined on host and device, where ggml's int8 cast is not): a NaN
// element is skipped by amax and gets q = 0 (round_half_away(NaN) is 0); when d <
// 2^-128, id overflows to Inf and the quants of nonzero elements saturate (rounding.h)
// -- such a d is 0 in FP16, so the block decodes to zeros whatever the quants hold.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "reference/numeric/convert.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/rounding.h"

namespace kvfid::ref::quant {

struct Q8_0 {
  static constexpr const char* kName = "q8_0";
  static constexpr int kBlock = 32;
  static constexpr int kBytes = 2 + kBlock;
  static constexpr bool kExhaustive = true;  // 255 quant levels per scale

  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    float amax = 0.0f;
    for (int i = 0; i < kBlock; ++i) amax = num::max(amax, abs_of(x[i]));
    const float d = num::div(amax, 127.0f);
    const float id = d != 0.0f ? num::div(1.0f, d) : 0.0f;
    store_u16(block, num::f32_to_f16(d));
    // |x * id| <= 127 up to two roundings, so the rounded quant fits in int8.
    for (int i = 0; i < kBlock; ++i) block[2 + i] = std::uint8_t(std::int8_t(round_half_away(x[i] * id)));
  }

  // d has 11 significant bits and |q| <= 127 has 7: the product is exact in FP32.
  KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams&) {
    return num::f16_to_f32(load_u16(block)) * float(std::int8_t(block[2 + i]));
  }

  static double decode_exact(const std::uint8_t* block, int i, const CodecParams&) {
    return f16_to_double(load_u16(block)) * double(std::int8_t(block[2 + i]));  // 18 bits: exact
  }

  // |x - dh q| <= |x - d q| + |d - dh| |q|. The first term is half a step d plus the
  // roundings of d = amax/127, id = 1/d and x*id (each <= 2^-24 relative, so q is at
  // most one step off only at a tie, which |x - d q| <= d (1/2 + 128 * 3 * 2^-24)
  // covers). The second is FP16's rounding of d: relative 2^-11 for a normal d,
  // absolute 2^-25 (half its subnormal spacing) below, times |q| <= 127.
  static double error_bound(const float* x, int, const CodecParams&) {
    double amax = 0;
    for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(double(x[i])));
    const double d = amax / 127;
    return d * (0.5 + 128 * 3 * 0x1p-24) + 127 * fp16_rounding(d);
  }
};

}  // namespace kvfid::ref::quant
