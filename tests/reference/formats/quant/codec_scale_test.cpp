// Derived test, run for every codec in registry.h: what CodecParams::scale means. A
// scaled format (kUnitScaleMax, codec.h) represents its largest value at every scale,
// exactly, and saturates beyond it; the scale moves that range and nothing else. Every
// other format ignores the scale: its bytes do not depend on it.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/codec_types.h"

namespace kvfid::ref {
namespace {

// Scales that are powers of two (products exact) and not (one rounding each way).
constexpr float kScales[] = {1.0f, 0.125f, 3.0f, 0.0173f};
constexpr int kTrials = 32;

class CodecScale : public test::EveryCodec {};
INSTANTIATE_EVERY_CODEC(CodecScale);

std::vector<std::uint8_t> encoded(const quant::FormatInfo& f, const std::vector<float>& x, float scale) {
  std::vector<std::uint8_t> bytes(std::size_t(f.bytes));
  f.encode(x.data(), bytes.data(), {scale});
  return bytes;
}

TEST_P(CodecScale, ScaledFormatsHoldTheirLargestValueAndSaturateBeyondIt) {
  const quant::FormatInfo& f = format();
  const double top = f.unit_scale_max;
  if (top == 0) GTEST_SKIP() << f.name << " is not a scaled format (no kUnitScaleMax)";
  ASSERT_EQ(f.block, 1) << "a scaled block format needs this test generalized";
  for (float scale : kScales) {
    SCOPED_TRACE("scale " + std::to_string(scale));
    const double largest = top * scale;  // the value of the largest code
    const float at = float(largest);
    // The largest code decodes to top * scale exactly; its FP32 value is that product
    // rounded once.
    const std::vector<std::uint8_t> code = encoded(f, {float(top) * scale}, scale);
    EXPECT_EQ(f.decode_exact(code.data(), 0, {scale}), largest);
    EXPECT_EQ(f.decode(code.data(), 0, {scale}), at);
    for (float beyond : {2 * at, 1e30f, std::numeric_limits<float>::infinity()}) {
      EXPECT_EQ(encoded(f, {beyond}, scale), code) << beyond << " does not saturate";
      EXPECT_EQ(f.decode_exact(encoded(f, {-beyond}, scale).data(), 0, {scale}), -largest);
    }
  }
}

TEST_P(CodecScale, OtherFormatsIgnoreTheScale) {
  const quant::FormatInfo& f = format();
  if (f.unit_scale_max != 0) GTEST_SKIP() << f.name << " is a scaled format";
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int trial = 0; trial < kTrials; ++trial) {
    std::vector<float> x(f.block);
    for (float& v : x) v = normal(rng);
    const std::vector<std::uint8_t> unit = encoded(f, x, 1.0f);
    for (float scale : kScales) {
      ASSERT_EQ(encoded(f, x, scale), unit) << "scale " << scale;
      for (int i = 0; i < f.block; ++i)
        ASSERT_EQ(f.decode(unit.data(), i, {scale}), f.decode(unit.data(), i, {1.0f}));
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
