#include "reference/formats/quant/registry.h"

#include "reference/util/input_error.h"

namespace kvfid::ref::quant {
namespace {

template <Codec C>
constexpr double unit_scale_max() {
  if constexpr (requires { C::kUnitScaleMax; }) return C::kUnitScaleMax;
  else return 0;
}

template <Codec... Cs>
std::vector<FormatInfo> describe(CodecList<Cs...>) {
  int index = 0;
  return {FormatInfo{index++, Cs::kName, Cs::kBlock, Cs::kBytes, Cs::kExhaustive, unit_scale_max<Cs>(), &Cs::encode,
                     &Cs::decode, &Cs::decode_exact, &Cs::error_bound}...};
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

}  // namespace kvfid::ref::quant
