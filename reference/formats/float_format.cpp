#include "reference/formats/float_format.h"

#include <cmath>

#include "reference/numeric/convert.h"
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
  // A binary32 value (every stored weight, every value the emulated baseline or the
  // engine makes) goes through numeric/convert.h's bit-exact conversions, several times
  // faster: the same RNE rounding, subnormals and overflow (tests/reference/numeric/
  // convert_test.cpp holds them to minifloat_encode_rne at every midpoint).
  const float xf = float(x);
  if (double(xf) == x)
    return f == FloatFormat::f16 ? double(num::f16_to_f32(num::f32_to_f16(xf))) : double(num::bf16_to_f32(num::f32_to_bf16(xf)));
  return minifloat_round(x, spec_of(f));
}

double ulp_of(double x, FloatFormat f) {
  const MiniFloatSpec s = spec_of(f);
  const int emin = 1 - s.bias();
  int e = (x == 0 || !std::isfinite(x)) ? emin : std::max(std::ilogb(x), emin);
  return std::ldexp(1.0, e - s.man_bits);
}

}  // namespace kvfid::ref
