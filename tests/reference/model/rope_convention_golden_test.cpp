// stories260K ships with interleaved RoPE (llama2.c). Converted to the HF layout, its
// q/k rows are permuted so that rotate-half RoPE computes the same function. Both
// goldens are the correctly rounded float64 of the same exact real numbers, so their
// logits must agree bit for bit: any RoPE-convention bug in the loaders, the
// permutation or the forward pass shows up here.
#include <gtest/gtest.h>

#include "reference/io/hf.h"
#include "reference/io/load_model.h"
#include "reference/model/rope_permute.h"
#include "reference/mp/golden_forward.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// Long enough for RoPE to rotate by many radians at the fastest frequency (angle = t).
constexpr int kPromptLength = 24;

TEST(RopeConventionGolden, Stories260kInterleavedEqualsConvertedRotateHalf) {
  auto path = test::stories260k_path();
  if (!path) GTEST_SKIP() << test::kStoriesMissing;
  const Model original = load_model(*path);
  ASSERT_EQ(original.config.rope, RopeStyle::interleaved);

  const std::string dir = test::scratch_dir("stories_hf");
  write_hf_model(dir, permute_to_rotate_half(original), FloatFormat::f32);
  const Model converted = load_model(dir);
  ASSERT_EQ(converted.config.rope, RopeStyle::rotate_half);

  std::vector<int> tokens = {1};
  for (int t = 1; t < kPromptLength; ++t) tokens.push_back((t * 97 + 13) % original.config.vocab);
  GoldenOptions options;
  options.taps = TapSelection::logits;
  const GoldenResult a = compute_golden(original, tokens, options);
  const GoldenResult b = compute_golden(converted, tokens, options);
  const TapTensor* la = find_tap(a.taps, "logits");
  const TapTensor* lb = find_tap(b.taps, "logits");
  ASSERT_TRUE(la && lb);
  ASSERT_EQ(la->values.size(), lb->values.size());
  for (std::size_t i = 0; i < la->values.size(); ++i)
    ASSERT_EQ(la->values[i], lb->values[i]) << "logit " << i << " differs between RoPE conventions";
}

}  // namespace
}  // namespace kvfid::ref
