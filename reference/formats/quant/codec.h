#pragma once
// The plug-in contract of a quantized (block) format. A format is one header defining
// a struct with the static members below; adding it to the list in registry.h makes
// the engine (twin and CUDA), the reference, `kvfid quantize` and the derived test
// suite (tests/reference/formats/quant/) use it, with no test written by hand.
//
//   static constexpr const char* kName;   the name users write (--kv q8_0)
//   static constexpr int kBlock;          elements per block
//   static constexpr int kBytes;          bytes per block, the format's own layout
//   static constexpr bool kExhaustive;    codes few enough that the derived tests visit
//                                         every one: all byte patterns of a one-element
//                                         block (kBytes <= 2), or every quant level of
//                                         a block format at a few fixed scales
//   KVFID_HD static void encode(const float* x, std::uint8_t* block, const CodecParams& p);
//                                         x: [kBlock] finite floats -> block: [kBytes]
//   KVFID_HD static float decode(const std::uint8_t* block, int i, const CodecParams& p);
//                                         element i as the engine computes it: FP32
//                                         arithmetic, the same bits on host and device
//   static double decode_exact(const std::uint8_t* block, int i, const CodecParams& p);
//                                         the value code i stands for, exactly (the
//                                         header argues why float64 holds it)
//   static double error_bound(const float* x, int i, const CodecParams& p);
//                                         the claimed bound on |x[i] - decode_exact|,
//                                         derived in the header from the encoding rule
//
// Two optional properties, true when absent (codec_idempotent, codec_repeat_invariant):
//   static constexpr bool kIdempotent;     encode(decode(encode(x))) == encode(x): the
//                                         decoded block is a fixed point. False for the
//                                         norm-scaled tq formats (turbo_mse.h), whose
//                                         decoded block has another norm; the derived
//                                         idempotence test skips them
//   static constexpr bool kRepeatInvariant; the block's codes depend on the values it
//                                         holds, not on how often each occurs (scales
//                                         from amax, min, max), so a row's last block
//                                         padded by repeats (row_blocks.h) codes its
//                                         real elements as a partial block would. False
//                                         for the tq formats, whose norm counts repeats
//
// A scaled format (value = code * CodecParams::scale, e.g. FP8) also defines
//   static constexpr double kUnitScaleMax;  its largest finite magnitude at scale 1, so
//                                         scale = amax / kUnitScaleMax maps a tensor's
//                                         largest value onto it (kv_calibration.h)
// and every other format ignores CodecParams::scale (the derived tests check both).
//
// encode and decode use only integer operations and correctly rounded IEEE float
// operations (reference/numeric/ieee.h), so host and device produce the same bytes and bits.
// A non-finite input is outside every format's domain: callers check first
// (reference/metrics/gross_check.h) and the derived tests document what each format
// does with one.
#include <concepts>
#include <cstdint>

#include "reference/numeric/hd.h"

namespace kvfid::ref::quant {

// Parameters fixed before encoding, shared by all blocks of a tensor (or of one KV head):
// the static scale of the scaled FP8 formats (value = code * scale). Block formats carry
// their own scales in the block and ignore it.
struct CodecParams {
  float scale = 1.0f;
};

template <class C>
concept Codec = requires(const float* x, std::uint8_t* block, const std::uint8_t* cblock, int i,
                         const CodecParams& p) {
  { C::kName } -> std::convertible_to<const char*>;
  { C::kBlock } -> std::convertible_to<int>;
  { C::kBytes } -> std::convertible_to<int>;
  { C::kExhaustive } -> std::convertible_to<bool>;
  { C::encode(x, block, p) } -> std::same_as<void>;
  { C::decode(cblock, i, p) } -> std::same_as<float>;
  { C::decode_exact(cblock, i, p) } -> std::same_as<double>;
  { C::error_bound(x, i, p) } -> std::same_as<double>;
};

template <Codec C>
constexpr bool codec_idempotent() {
  if constexpr (requires { C::kIdempotent; }) return C::kIdempotent;
  else return true;
}

template <Codec C>
constexpr bool codec_repeat_invariant() {
  if constexpr (requires { C::kRepeatInvariant; }) return C::kRepeatInvariant;
  else return true;
}

// Little-endian 16-bit field access (block layouts are little-endian, as ggml's).
KVFID_HD std::uint16_t load_u16(const std::uint8_t* p) { return std::uint16_t(p[0] | (p[1] << 8)); }
KVFID_HD void store_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = std::uint8_t(v & 0xFFu);
  p[1] = std::uint8_t(v >> 8);
}

// Element i of kBlock 4-bit quants packed in ggml's order: element j in the low nibble
// of qs[j] and element j + kBlock/2 in the high nibble.
template <int kBlock>
KVFID_HD int packed_nibble(const std::uint8_t* qs, int i) {
  return i < kBlock / 2 ? qs[i] & 0x0F : qs[i - kBlock / 2] >> 4;
}

// Half an FP16 ulp at a (0 <= a < 65504), the most FP16 rounding moves a: relative
// 2^-11 for normals, absolute 2^-25 (half the subnormal spacing) below 2^-14. The FP16
// scale and minimum fields of the block codecs' error bounds.
inline double fp16_rounding(double a) { return a >= 0x1p-14 ? a * 0x1p-11 : 0x1p-25; }

}  // namespace kvfid::ref::quant
