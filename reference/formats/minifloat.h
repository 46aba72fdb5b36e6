#pragma once
// Exact codecs for IEEE-style binary formats narrower than float64 (FP16, BF16,
// FP8 E5M2): biased exponent, implicit leading one, subnormals, Inf and NaN.
// These are the specification; the engine's own conversions are tested against them.
#include <cstdint>

namespace kvfid {

struct MiniFloatSpec {
  int exp_bits;
  int man_bits;
  int bias() const { return (1 << (exp_bits - 1)) - 1; }
};

inline constexpr MiniFloatSpec kFp16{5, 10};
inline constexpr MiniFloatSpec kBf16{8, 7};
inline constexpr MiniFloatSpec kFp8E5M2{5, 2};

// The value of a code (exact in float64 for every format above).
double minifloat_decode(std::uint32_t bits, MiniFloatSpec spec);
// Round to nearest, ties to even; overflow goes to Inf; NaN becomes the quiet NaN.
std::uint32_t minifloat_encode_rne(double x, MiniFloatSpec spec);
// x rounded to the format and back: the value a store in that format keeps.
inline double minifloat_round(double x, MiniFloatSpec spec) {
  return minifloat_decode(minifloat_encode_rne(x, spec), spec);
}

inline double f16_to_double(std::uint16_t h) { return minifloat_decode(h, kFp16); }
inline std::uint16_t double_to_f16(double x) { return std::uint16_t(minifloat_encode_rne(x, kFp16)); }
inline double bf16_to_double(std::uint16_t h) { return minifloat_decode(h, kBf16); }
inline std::uint16_t double_to_bf16(double x) { return std::uint16_t(minifloat_encode_rne(x, kBf16)); }

}  // namespace kvfid
