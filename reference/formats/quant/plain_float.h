#pragma once
// FP32, FP16 and BF16 as one-element "blocks", so a KV policy can name them next to
// the quantized formats (FP16 for the edge layers, say). Round to nearest even.
#include <cstdint>
#include <cstring>

#include "reference/numeric/convert.h"
#include "reference/numeric/float_format_enum.h"
#include "reference/formats/minifloat.h"
#include "reference/formats/quant/codec.h"

namespace kvfid::ref::quant {

struct F32Codec {
  static constexpr const char* kName = "f32";
  static constexpr FloatFormat kPlain = FloatFormat::f32;  // the plain float format it is
  static constexpr int kBlock = 1;
  static constexpr int kBytes = 4;
  static constexpr bool kExhaustive = false;
  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    const std::uint32_t u = num::bits_of(x[0]);
    for (int b = 0; b < 4; ++b) block[b] = std::uint8_t(u >> (8 * b));
  }
  KVFID_HD static float decode(const std::uint8_t* block, int, const CodecParams&) {
    return num::float_of(std::uint32_t(block[0]) | std::uint32_t(block[1]) << 8 | std::uint32_t(block[2]) << 16 |
                         std::uint32_t(block[3]) << 24);
  }
  static double decode_exact(const std::uint8_t* block, int i, const CodecParams& p) { return decode(block, i, p); }
  static double error_bound(const float*, int, const CodecParams&) { return 0; }  // the identity
};

struct F16Codec {
  static constexpr const char* kName = "f16";
  static constexpr FloatFormat kPlain = FloatFormat::f16;  // the plain float format it is
  static constexpr int kBlock = 1;
  static constexpr int kBytes = 2;
  static constexpr bool kExhaustive = true;
  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    store_u16(block, num::f32_to_f16(x[0]));
  }
  KVFID_HD static float decode(const std::uint8_t* block, int, const CodecParams&) {
    return num::f16_to_f32(load_u16(block));
  }
  static double decode_exact(const std::uint8_t* block, int, const CodecParams&) {
    return f16_to_double(load_u16(block));
  }
  // Half an ulp: relative 2^-11 for normals, absolute 2^-25 in the subnormal range.
  static double error_bound(const float* x, int, const CodecParams&) {
    return fp16_rounding(x[0] < 0 ? -double(x[0]) : double(x[0]));
  }
};

struct BF16Codec {
  static constexpr const char* kName = "bf16";
  static constexpr FloatFormat kPlain = FloatFormat::bf16;  // the plain float format it is
  static constexpr int kBlock = 1;
  static constexpr int kBytes = 2;
  static constexpr bool kExhaustive = true;
  KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams&) {
    store_u16(block, num::f32_to_bf16(x[0]));
  }
  KVFID_HD static float decode(const std::uint8_t* block, int, const CodecParams&) {
    return num::bf16_to_f32(load_u16(block));
  }
  static double decode_exact(const std::uint8_t* block, int, const CodecParams&) {
    return bf16_to_double(load_u16(block));
  }
  // Half an ulp, relative 2^-8 (BF16 shares FP32's exponent range; an FP32 subnormal
  // input rounds at BF16's absolute subnormal spacing 2^-133, half of it 2^-134).
  static double error_bound(const float* x, int, const CodecParams&) {
    const double a = x[0] < 0 ? -double(x[0]) : double(x[0]);
    return a >= 0x1p-126 ? a * 0x1p-8 : 0x1p-134;
  }
};

}  // namespace kvfid::ref::quant
