#pragma once
// Exact codecs for IEEE-style binary formats narrower than float64 (FP16, BF16,
// FP8 E5M2, FP8 E4M3): biased exponent, implicit leading one, subnormals, Inf and NaN.
// These are the specification; the engine's own conversions are tested against them.
// E4M3 is OCP's "fn" variant (finite_only): no Inf, the all-ones exponent holds normal
// values up to 448, and only S.1111.111 is NaN.
#include <cstdint>

namespace kvfid::ref {

struct MiniFloatSpec {
  int exp_bits;
  int man_bits;
  bool finite_only = false;  // OCP "fn": no Inf codes, one NaN code per sign
  int bias() const { return (1 << (exp_bits - 1)) - 1; }
};

inline constexpr MiniFloatSpec kFp16{5, 10};
inline constexpr MiniFloatSpec kBf16{8, 7};
inline constexpr MiniFloatSpec kFp8E5M2{5, 2};
inline constexpr MiniFloatSpec kFp8E4M3{4, 3, true};

// The value of a code (exact in float64 for every format above).
double minifloat_decode(std::uint32_t bits, MiniFloatSpec spec);
// Round to nearest, ties to even; overflow goes to Inf (NaN for a finite_only format,
// which has no Inf); NaN becomes the quiet NaN (S.1111.111 for finite_only).
std::uint32_t minifloat_encode_rne(double x, MiniFloatSpec spec);
// x rounded to the format and back: the value a store in that format keeps.
inline double minifloat_round(double x, MiniFloatSpec spec) {
  return minifloat_decode(minifloat_encode_rne(x, spec), spec);
}

inline double f16_to_double(std::uint16_t h) { return minifloat_decode(h, kFp16); }
inline std::uint16_t double_to_f16(double x) { return std::uint16_t(minifloat_encode_rne(x, kFp16)); }
inline double bf16_to_double(std::uint16_t h) { return minifloat_decode(h, kBf16); }
inline std::uint16_t double_to_bf16(double x) { return std::uint16_t(minifloat_encode_rne(x, kBf16)); }

}  // namespace kvfid::ref
