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

template <class C>
class CodecScale : public ::testing::Test {};
TYPED_TEST_SUITE(CodecScale, test::AllCodecs, test::CodecName);

template <class C>
std::vector<std::uint8_t> encoded(const std::vector<float>& x, float scale) {
  std::vector<std::uint8_t> bytes(C::kBytes);
  C::encode(x.data(), bytes.data(), {scale});
  return bytes;
}

TYPED_TEST(CodecScale, ScaledFormatsHoldTheirLargestValueAndSaturateBeyondIt) {
  const double top = test::info_of<TypeParam>().unit_scale_max;
  if (top == 0) GTEST_SKIP() << TypeParam::kName << " is not a scaled format (no kUnitScaleMax)";
  ASSERT_EQ(TypeParam::kBlock, 1) << "a scaled block format needs this test generalized";
  for (float scale : kScales) {
    SCOPED_TRACE("scale " + std::to_string(scale));
    const double largest = top * scale;  // the value of the largest code
    const float at = float(largest);
    // The largest code decodes to top * scale exactly; its FP32 value is that product
    // rounded once.
    const std::vector<std::uint8_t> code = encoded<TypeParam>({float(top) * scale}, scale);
    EXPECT_EQ(TypeParam::decode_exact(code.data(), 0, {scale}), largest);
    EXPECT_EQ(TypeParam::decode(code.data(), 0, {scale}), at);
    for (float beyond : {2 * at, 1e30f, std::numeric_limits<float>::infinity()}) {
      EXPECT_EQ(encoded<TypeParam>({beyond}, scale), code) << beyond << " does not saturate";
      EXPECT_EQ(TypeParam::decode_exact(encoded<TypeParam>({-beyond}, scale).data(), 0, {scale}), -largest);
    }
  }
}

TYPED_TEST(CodecScale, OtherFormatsIgnoreTheScale) {
  if (test::info_of<TypeParam>().unit_scale_max != 0) GTEST_SKIP() << TypeParam::kName << " is a scaled format";
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int trial = 0; trial < kTrials; ++trial) {
    std::vector<float> x(TypeParam::kBlock);
    for (float& v : x) v = normal(rng);
    const std::vector<std::uint8_t> unit = encoded<TypeParam>(x, 1.0f);
    for (float scale : kScales) {
      ASSERT_EQ(encoded<TypeParam>(x, scale), unit) << "scale " << scale;
      for (int i = 0; i < TypeParam::kBlock; ++i)
        ASSERT_EQ(TypeParam::decode(unit.data(), i, {scale}), TypeParam::decode(unit.data(), i, {1.0f}));
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
