#include "reference/formats/float_format.h"

#include <cmath>

#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {
constexpr MiniFloatSpec kFp32{8, 23};
MiniFloatSpec spec_of(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return kFp32;
    case FloatFormat::f16: return kFp16;
    case FloatFormat::bf16: return kBf16;
  }
  return kFp32;
}
}  // namespace

std::string to_string(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return "f32";
    case FloatFormat::f16: return "f16";
    case FloatFormat::bf16: return "bf16";
  }
  return "?";
}

FloatFormat float_format_from_string(const std::string& s, const std::string& source) {
  if (s == "f32" || s == "fp32") return FloatFormat::f32;
  if (s == "f16" || s == "fp16") return FloatFormat::f16;
  if (s == "bf16") return FloatFormat::bf16;
  throw InputError(source, "unknown format '" + s + "' (expected f32, f16 or bf16)");
}

int significand_bits(FloatFormat f) { return spec_of(f).man_bits + 1; }

double round_to_format(double x, FloatFormat f) {
  if (f == FloatFormat::f32) return double(float(x));
  return minifloat_round(x, spec_of(f));
}

double ulp_of(double x, FloatFormat f) {
  const MiniFloatSpec s = spec_of(f);
  const int emin = 1 - s.bias();
  int e = (x == 0 || !std::isfinite(x)) ? emin : std::max(std::ilogb(x), emin);
  return std::ldexp(1.0, e - s.man_bits);
}

}  // namespace kvfid::ref
