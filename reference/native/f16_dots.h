#pragma once
// The binary16 emulation's dot products, many at once, on x86's F16C conversions: bit for
// bit FormatArith<f16>'s sequential sums s = add(s, mul(a_i, b_i)) (format_arith.h), eight
// sums to a vector, each lane one sum in its own order, so every rounding is the scalar
// one. The projections (a row's weights with every token's activations) and attention
// (a query with every key, the probabilities with every value dimension) use it. Why each
// vector step rounds as the scalar one: f16_dots.cpp.
//
// It serves where the CPU has AVX2 and F16C (asked at run time: the project's baseline
// stays plain x86-64) and where one operand of every product is binary16 and the other
// binary32 (F16Products says which kind of binary32); values binary32 cannot hold keep
// FormatArith.
#include <cstddef>

namespace kvfid::ref::native {

// 11 bits of a binary16 value + 13 = 24: the product is exact in binary32.
inline constexpr int kF16DotOperandBits = 13;
// Lanes of one vector: accumulate_f16's width is a multiple of it.
inline constexpr int kF16DotLanes = 8;

// Whether this CPU runs accumulate_f16's vector kernel (AVX2 and F16C).
bool f16_dots_available();

// Whether each of v's n binary32 values has at most kF16DotOperandBits significant bits,
// tested as: the last 24 - 13 = 11 bits of its 23-bit significand field are zero (exact
// for normal values; a subnormal one that passes has at most 12; zeros and infinities
// pass; a NaN operand makes NaN products either way).
bool f16_dot_operands(const float* v, std::size_t n);

// The operands besides the binary16 ones: narrow, at most kF16DotOperandBits significant
// bits (f16_dot_operands: the product is exact in binary32, two conversions a step), or
// any binary32 value (the product through binary64, about three times the work).
enum class F16Products { narrow, binary32 };

// acc[l] <- (((acc[l] + a_0 b[l]) + a_1 b[stride + l]) + ...) + a_{n-1} b[(n-1) stride + l]
// for l < width, each product and each sum rounded to binary16 (the order of FormatArith's
// column loop, continued from acc). acc: [width] binary16 values; a: [n]; b: [n, stride],
// read at columns [0, width); width a multiple of kF16DotLanes. For every i and l, one of
// a_i, b[i stride + l] is a binary16 value and the other is of kind p. Needs
// f16_dots_available().
void accumulate_f16(float* acc, const float* a, int n, const float* b, std::size_t stride, int width,
                    F16Products p);

}  // namespace kvfid::ref::native
