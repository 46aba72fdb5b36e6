// Derived tests, run for every codec in registry.h: the per-element bound each format
// claims holds on random and adversarial blocks, the FP32 decode is the exact value
// rounded once, and the bound is not vacuous.
#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/block_families.h"
#include "tests/reference/formats/quant/codec_types.h"
#include "tests/reference/formats/quant/derived_check.h"

namespace kvfid::ref {
namespace {

// Each bound is half a step of the format's grid plus lower-order terms (the FP16
// rounding of a scale, FP32 roundings in encode), and among thousands of random
// elements some land within a few percent of a tie, where the error is half a step.
// So the worst error seen must use at least half of the bound; less would mean a
// bound so loose that checking it proves little.
constexpr double kMinBoundUse = 0.5;

class CodecRoundTrip : public test::EveryCodec {};
INSTANTIATE_EVERY_CODEC(CodecRoundTrip);

TEST_P(CodecRoundTrip, WithinTheBoundOnRandomBlocks) {
  const quant::FormatInfo& f = format();
  SCOPED_TRACE(test::seed_trace());
  for (const quant::CodecParams& p : test::test_params()) {
    auto blocks = test::random_blocks(f.block, test::test_seed(), test::kElementsPerFamily);
    for (auto& b : test::offset_blocks(f.block, test::test_seed() + 1, test::kElementsPerFamily))
      blocks.push_back(std::move(b));
    double worst_use = 0;
    bool any_bound = false;
    for (const auto& b : blocks) {
      const auto r = test::check_block(f, b, p);
      ASSERT_EQ(r.failure, "");
      worst_use = std::max(worst_use, r.worst_use);
      any_bound = any_bound || r.any_bound;
    }
    if (any_bound) {
      EXPECT_GE(worst_use, kMinBoundUse) << "scale " << p.scale << ": the bound is loose";
    }
  }
}

TEST_P(CodecRoundTrip, WithinTheBoundOnAdversarialBlocks) {
  const quant::FormatInfo& f = format();
  for (const quant::CodecParams& p : test::test_params()) {
    for (const auto& b : test::adversarial_blocks(f, p)) ASSERT_EQ(test::check_block(f, b, p).failure, "");
  }
}

}  // namespace
}  // namespace kvfid::ref
