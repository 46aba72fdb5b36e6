#pragma once
// Every quantized format kvfid knows: registering a new one is adding its header to
// the includes and its type to `Codecs`. Host code looks formats up by name through
// FormatInfo; kernels get the codec type from with_codec (one instantiation each).
#include <optional>
#include <string>
#include <vector>

#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/fp8.h"
#include "reference/formats/quant/int_asymmetric.h"
#include "reference/formats/quant/int_symmetric.h"
#include "reference/formats/quant/plain_float.h"
#include "reference/formats/quant/q4_0.h"
#include "reference/formats/quant/q8_0.h"
#include "reference/formats/quant/turbo_mse.h"
#include "reference/formats/quant/turbo_prod.h"

namespace kvfid::ref::quant {

template <Codec... Cs>
struct CodecList {
  static constexpr int size = sizeof...(Cs);
};

using Codecs = CodecList<F32Codec, F16Codec, BF16Codec, Q8_0, Q4_0, Fp8E4M3, Fp8E5M2, Int8_32, Int8_64, Int4_32,
                         Int4_64, Int8a_32, Int8a_64, Int4a_32, Int4a_64, Tq1_32, Tq2_32, Tq3_32, Tq4_32, Tq1_128,
                         Tq2_128, Tq3_128, Tq4_128, Tq2p5_32, Tq3p5_32, Tq2p5_128, Tq3p5_128, Tqp2_32,
                         Tqp3_32, Tqp4_32, Tqp2_128, Tqp3_128, Tqp4_128>;

// A format seen from host code: its constants and its functions.
struct FormatInfo {
  int index;  // position in Codecs, for with_codec
  const char* name;
  int block;
  int bytes;
  bool exhaustive;
  bool repeat_invariant;  // codec_repeat_invariant (codec.h)
  bool idempotent;        // codec_idempotent (codec.h)
  double unit_scale_max;  // a scaled format's kUnitScaleMax; 0 when the format ignores the scale
  std::optional<FloatFormat> plain;  // f32, f16, bf16: the plain float format the codec is (kPlain)
  void (*encode)(const float* x, std::uint8_t* block, const CodecParams& p);
  float (*decode)(const std::uint8_t* block, int i, const CodecParams& p);
  double (*decode_exact)(const std::uint8_t* block, int i, const CodecParams& p);
  double (*error_bound)(const float* x, int i, const CodecParams& p);
};

const std::vector<FormatInfo>& all_formats();
// Throws InputError(source, "unknown format NAME; known: ...").
const FormatInfo& format_by_name(const std::string& name, const std::string& source);
// The codec of a plain float format (FormatInfo::plain == f).
const FormatInfo& plain_format(FloatFormat f);

// Calls fn.template operator()<C>() with the codec whose index is `index`.
template <class Fn, Codec... Cs>
void with_codec_in(int index, Fn&& fn, CodecList<Cs...>) {
  int i = 0;
  ((i++ == index ? (fn.template operator()<Cs>(), true) : false) || ...);
}
template <class Fn>
void with_codec(int index, Fn&& fn) {
  with_codec_in(index, fn, Codecs{});
}

}  // namespace kvfid::ref::quant
