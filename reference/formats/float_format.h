#pragma once
// The binary formats a value can be stored or computed in. Quantized block formats
// (Q8_0, INT4, FP8 with scales) are a separate concept, added by the quantization work.
#include <string>

#include "reference/formats/minifloat.h"
#include "reference/numeric/float_format_enum.h"  // the enum itself

namespace kvfid::ref {

std::string to_string(FloatFormat f);
// Accepts f32|fp32, f16|fp16, bf16; throws InputError(source, ...) otherwise.
FloatFormat float_format_from_string(const std::string& s, const std::string& source);
int significand_bits(FloatFormat f);  // including the implicit bit: 24, 11, 8
// x rounded to nearest-even in the format (overflow to Inf, subnormals kept).
double round_to_format(double x, FloatFormat f);
// The spacing of the format at |x| (one unit in the last place), for errors in ULPs.
double ulp_of(double x, FloatFormat f);

}  // namespace kvfid::ref
