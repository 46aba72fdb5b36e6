#pragma once
// The blocks the derived codec tests feed every registered format (seeded random
// families shaped like KV-cache and weight data, and adversarial ones), and the grids
// of values a format can hold. Written against FormatInfo so the host tests and the
// GPU comparison (tests/cuda/gpu/gpu_quant_test.cpp) share them.
#include <cstdint>
#include <string>
#include <vector>

#include "reference/formats/quant/registry.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

struct TestBlock {
  std::string family;    // names the block in failure messages
  std::vector<float> x;  // [format block]
};

// The static scales the tests run every format with (formats without one ignore it):
// 1, and 0.37, whose division is inexact, so encode's x / scale rounding is exercised.
std::vector<quant::CodecParams> test_params();

std::vector<std::uint8_t> encode_block(const quant::FormatInfo& f, const std::vector<float>& x,
                                       const quant::CodecParams& p);
std::vector<float> decode_block(const quant::FormatInfo& f, const std::vector<std::uint8_t>& bytes,
                                const quant::CodecParams& p);

// Values per family and scale in the derived suite's sweeps: 2048 gives every format
// thousands of elements (dozens of blocks of 64) in a few milliseconds, even under ASan.
inline constexpr int kElementsPerFamily = 2048;

// Random blocks, `elements` values per family (whole blocks): normal, heavy-tailed
// (Student t, 3 degrees of freedom), outlier channels (two fixed positions 100x the
// rest, as LLM activations have), and uniform positive. Every family is centred on or
// touches zero, and stays below 6400 in magnitude, inside every format's range.
std::vector<TestBlock> random_blocks(int block, std::uint64_t seed, int elements);

// Offset-dominated blocks (mean 40 sigma, as a key channel with a large bias): a
// stress for asymmetric formats' FP16 minimum, whose rounding exceeds half a step.
std::vector<TestBlock> offset_blocks(int block, std::uint64_t seed, int elements);

// All equal, one outlier, zeros of both signs, FP32 subnormals, mixed signs, values
// small enough that block scales are FP16 subnormals, values at
// and around the largest magnitude the format holds (found by probing it, see
// largest_finite_input), and exact ties between adjacent levels of the format's grid.
std::vector<TestBlock> adversarial_blocks(const quant::FormatInfo& f, const quant::CodecParams& p);

// The largest float A for which A * pattern (pattern: [block]) encodes to a block that
// decodes to finite values: a binary search over the float bit patterns, assuming
// finiteness is lost once and for good as A grows (overflow of a scale or a value).
float largest_finite_input(const quant::FormatInfo& f, const quant::CodecParams& p, const std::vector<float>& pattern);

// A block format's scale pinned: x[0] = a, x[1] = -a, zeros elsewhere ([block]).
std::vector<float> pinned_block(int block, float a);

// Element `at` of pinned_block(a) swept over kSweepPoints evenly spaced values in
// [-a, a] (both ends included): the distinct values it decodes to (decode_exact),
// sorted. For an encoder that rounds to the nearest level, a level whose neighbours are
// more than 2 steps away cannot be missed: every input within a step of it is swept.
inline constexpr int kSweepPoints = 4096;
struct Sweep {
  std::vector<double> levels;
  double step;  // between swept inputs
};
Sweep sweep_levels(const quant::FormatInfo& f, const quant::CodecParams& p, float a, int at);

// The pins sweep_levels and the tie blocks use: each makes some format's scale exact
// (d = 1/4 for int4 and int4a, 1/64 for int8, int8a and Q8_0, a/8 for Q4_0), so that
// the midpoints between levels are exact ties of x * id; 0.37 makes every scale inexact.
inline constexpr float kPins[] = {1.0f, 1.75f, 1.875f, 127.0f / 64, 255.0f / 128, 0.37f};

// A one-element format (kBytes <= 2): the distinct finite values of all its codes, sorted.
std::vector<double> code_values(const quant::FormatInfo& f, const quant::CodecParams& p);

}  // namespace kvfid::test
