// attn_scores_simd and weighted_values_simd against attention_math.h's scalar loops,
// bit for bit: every key count of a split (1..256, so every remainder of eight), head
// sizes 8..128, keys and values in each storage format over a wide range of
// magnitudes, FP16 subnormals among them, and a FP16 NaN (the integer-path fallback).
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "cuda/common/attention_math.h"
#include "cuda/twin/attention_simd.h"
#include "tests/common/test_env.h"

namespace kvfid::engine {
namespace {

using ref::FloatFormat;

float attention_value(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-26, 8);  // FP16 subnormals start below 2^-14
  return std::ldexp(mantissa(rng), exponent(rng));
}

template <FloatFormat F>
void expect_attention_same_bits(std::uint64_t seed) {
  using T = typename num::Storage<F>::T;
  std::mt19937_64 rng(seed);
  for (int hd : {8, 16, 24, 64, 128}) {
    std::vector<T> cache(std::size_t(num::kSplit) * hd);
    for (T& v : cache) v = num::Storage<F>::store(attention_value(rng));
    if constexpr (F == FloatFormat::f16) cache[std::size_t(37) * hd + 3] = 0x7D01;  // a signalling NaN, key/value 37
    std::vector<float> q(hd), probs(num::kSplit);
    for (float& v : q) v = attention_value(rng);
    for (float& p : probs) p = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
    std::vector<const T*> rows(num::kSplit);
    for (int j = 0; j < num::kSplit; ++j) rows[j] = cache.data() + std::size_t(j) * hd;
    for (int count = 1; count <= num::kSplit; count += (count < 40 ? 1 : 13)) {
      std::vector<float> scores(count), out(hd);
      twin::attn_scores_simd<F>(q.data(), rows.data(), count, hd, 0.125f, scores.data());
      for (int j = 0; j < count; ++j)
        ASSERT_EQ(num::bits_of(scores[j]), num::bits_of(num::attn_score<F>(q.data(), rows[j], hd, 0.125f)))
            << "score " << j << " of " << count << ", head_dim " << hd;
      twin::weighted_values_simd<F>(probs.data(), rows.data(), count, hd, out.data());
      for (int d = 0; d < hd; ++d) {
        float a = 0.0f;
        for (int j = 0; j < count; ++j) a = num::fma(probs[j], num::Storage<F>::load(rows[j][d]), a);
        ASSERT_EQ(num::bits_of(out[d]), num::bits_of(a)) << "value sum " << d << " over " << count << " keys, head_dim " << hd;
      }
    }
  }
}

TEST(AttentionSimd, SameBitsAsTheScalarLoops) {
  if (!twin::attention_simd_available(64)) GTEST_SKIP() << "no AVX2 + FMA + F16C: the twin uses the scalar loops";
  SCOPED_TRACE(test::seed_trace());
  const std::uint64_t seed = test::test_seed();
  expect_attention_same_bits<FloatFormat::f32>(seed);
  expect_attention_same_bits<FloatFormat::f16>(seed + 1);
  expect_attention_same_bits<FloatFormat::bf16>(seed + 2);
}

TEST(AttentionSimd, OnlyWholeVectorsOfDimensions) {
  EXPECT_FALSE(twin::attention_simd_available(54));
  EXPECT_FALSE(twin::attention_simd_available(2));
}

}  // namespace
}  // namespace kvfid::engine
