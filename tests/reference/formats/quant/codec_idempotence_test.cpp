// Derived tests, run for every codec in registry.h: decoding and re-encoding a block
// gives back its bytes (for the formats that declare it, codec.h's kIdempotent), and (for kExhaustive formats) every code the format can emit
// decodes to a value that encodes to that code again.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/block_families.h"
#include "tests/reference/formats/quant/codec_types.h"
#include "tests/reference/formats/quant/derived_check.h"

namespace kvfid::ref {
namespace {

// IEEE-style formats give up one exponent value, 1/2^E of the codes, to Inf and NaN;
// the smallest E among the one-element formats is E4M3's 4 (which keeps all but 2 of
// its 256 codes finite). A decoder that maps more than 1/16 of the codes to non-finite
// values is broken, and the per-code checks would skip them.
constexpr double kMinFiniteCodeFraction = 1.0 - 1.0 / 16;

class CodecIdempotence : public test::EveryCodec {};
INSTANTIATE_EVERY_CODEC(CodecIdempotence);

std::vector<std::uint8_t> encode(const quant::FormatInfo& f, const std::vector<float>& x, const quant::CodecParams& p) {
  std::vector<std::uint8_t> bytes(std::size_t(f.bytes));
  f.encode(x.data(), bytes.data(), p);
  return bytes;
}

std::vector<float> decode(const quant::FormatInfo& f, const std::vector<std::uint8_t>& bytes,
                          const quant::CodecParams& p) {
  std::vector<float> y(std::size_t(f.block));
  for (int i = 0; i < f.block; ++i) y[i] = f.decode(bytes.data(), i, p);
  return y;
}

bool all_zero(const std::vector<float>& y) {
  return std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; });
}

// encode(decode(encode(x))) == encode(x), byte for byte. One exception, for the ggml
// formats, whose quants come from the float32 scale even when it rounds to 0 in FP16: a
// block that decodes to zeros only may re-encode to another encoding of zeros, which
// must then be a fixed point itself.
TEST_P(CodecIdempotence, ReencodingTheDecodedBlockGivesTheSameBytes) {
  const quant::FormatInfo& f = format();
  if (!f.idempotent)
    GTEST_SKIP() << f.name << " declares kIdempotent false (its header says why: the decoded block "
                 << "re-encodes to other bytes)";
  SCOPED_TRACE(test::seed_trace());
  for (const quant::CodecParams& p : test::test_params()) {
    auto blocks = test::random_blocks(f.block, test::test_seed(), test::kElementsPerFamily);
    for (auto& b : test::offset_blocks(f.block, test::test_seed() + 1, test::kElementsPerFamily))
      blocks.push_back(std::move(b));
    for (auto& b : test::adversarial_blocks(f, p)) blocks.push_back(std::move(b));
    for (const auto& b : blocks) {
      const auto first = encode(f, b.x, p);
      const auto decoded = decode(f, first, p);
      const auto second = encode(f, decoded, p);
      if (second == first) continue;
      ASSERT_TRUE(all_zero(decoded)) << test::describe(b, p, 0, first) << ": re-encodes to "
                                     << test::hex_bytes(second);
      ASSERT_TRUE(all_zero(decode(f, second, p))) << b.family;
      ASSERT_EQ(encode(f, decode(f, second, p), p), second) << b.family;
    }
  }
}

class CodecExhaustive : public test::EveryCodec {};
INSTANTIATE_EVERY_CODEC(CodecExhaustive);

// One-element formats: every byte pattern. A finite value re-encodes to its own code
// (signed zeros included); decode is decode_exact rounded to FP32 for every code.
void check_every_code(const quant::FormatInfo& f, const quant::CodecParams& p) {
  ASSERT_LE(f.bytes, 2) << "exhaustive one-element formats have at most 2^16 codes";
  const std::uint32_t codes = 1u << (8 * f.bytes);
  std::uint32_t finite = 0;
  std::vector<std::uint8_t> bytes(std::size_t(f.bytes)), again(std::size_t(f.bytes));
  for (std::uint32_t code = 0; code < codes; ++code) {
    for (int b = 0; b < f.bytes; ++b) bytes[b] = std::uint8_t(code >> (8 * b));
    const float v = f.decode(bytes.data(), 0, p);
    const double exact = f.decode_exact(bytes.data(), 0, p);
    if (std::isnan(exact)) {
      ASSERT_TRUE(std::isnan(v)) << "code " << code;
    } else {
      ASSERT_EQ(num::bits_of(v), num::bits_of(float(exact))) << "code " << code;
    }
    if (!std::isfinite(v)) continue;
    ++finite;
    f.encode(&v, again.data(), p);
    ASSERT_EQ(again, bytes) << "code " << code << " decodes to " << v << ", which encodes to " << test::hex_bytes(again);
  }
  EXPECT_GE(double(finite), kMinFiniteCodeFraction * codes);
}

// Block formats: at each pinned scale, element `at` swept over [-a, a] finds the levels
// of the grid (all of them: the sweep is finer than half the smallest gap); each level
// put back into the block decodes to itself, and the block re-encodes to its bytes.
void check_every_level(const quant::FormatInfo& f, const quant::CodecParams& p, float a, int at) {
  const test::Sweep sweep = test::sweep_levels(f, p, a, at);
  ASSERT_GE(sweep.levels.size(), 2u);
  for (std::size_t k = 0; k + 1 < sweep.levels.size(); ++k)
    ASSERT_GT(sweep.levels[k + 1] - sweep.levels[k], 2 * sweep.step)
        << "levels " << sweep.levels[k] << " and " << sweep.levels[k + 1] << " too close for the sweep";
  for (double level : sweep.levels) {
    std::vector<float> x = test::pinned_block(f.block, a);
    x[at] = float(level);
    const auto bytes = encode(f, x, p);
    ASSERT_EQ(f.decode_exact(bytes.data(), at, p), level) << "pin " << a << ", element " << at;
    ASSERT_EQ(encode(f, decode(f, bytes, p), p), bytes) << "pin " << a << ", level " << level;
  }
}

TEST_P(CodecExhaustive, EveryCodeDecodesToAValueThatEncodesToIt) {
  const quant::FormatInfo& f = format();
  if (!f.exhaustive) GTEST_SKIP() << f.name << " declares kExhaustive false (too many codes)";
  for (const quant::CodecParams& p : test::test_params()) {
    SCOPED_TRACE(testing::Message() << "scale " << p.scale);
    if (f.block == 1) {
      check_every_code(f, p);
    } else {
      // Element 2 and the last element: for the nibble formats the low nibble of one
      // byte and the high nibble of another.
      for (float a : test::kPins)
        for (int at : {2, f.block - 1}) check_every_level(f, p, a, at);
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
