#include "reference/formats/quant/registry.h"

#include <stdexcept>

#include "reference/util/input_error.h"

namespace kvfid::ref::quant {
namespace {

template <Codec C>
constexpr double unit_scale_max() {
  if constexpr (requires { C::kUnitScaleMax; }) return C::kUnitScaleMax;
  else return 0;
}

template <Codec C>
constexpr std::optional<FloatFormat> plain_of() {
  if constexpr (requires { C::kPlain; }) return C::kPlain;
  else return std::nullopt;
}

template <Codec... Cs>
std::vector<FormatInfo> describe(CodecList<Cs...>) {
  int index = 0;
  return {FormatInfo{index++, Cs::kName, Cs::kBlock, Cs::kBytes, Cs::kExhaustive, codec_repeat_invariant<Cs>(),
                     codec_idempotent<Cs>(), unit_scale_max<Cs>(), plain_of<Cs>(), &Cs::encode, &Cs::decode,
                     &Cs::decode_exact, &Cs::error_bound}...};
}

}  // namespace

const std::vector<FormatInfo>& all_formats() {
  static const std::vector<FormatInfo> formats = describe(Codecs{});
  return formats;
}

const FormatInfo& format_by_name(const std::string& name, const std::string& source) {
  std::string known;
  for (const FormatInfo& f : all_formats()) {
    if (name == f.name) return f;
    known += (known.empty() ? "" : ", ") + std::string(f.name);
  }
  throw InputError(source, "unknown format '" + name + "'; known: " + known);
}

const FormatInfo& plain_format(FloatFormat f) {
  for (const FormatInfo& info : all_formats())
    if (info.plain == f) return info;
  throw std::logic_error("plain_format: the registry lacks a plain float codec");  // Codecs lists all three
}

}  // namespace kvfid::ref::quant
