#include "cuda/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid::engine {
namespace {

std::vector<float> random_logits(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> l(n);
  for (float& x : l) x = d(rng);
  return l;
}

TEST(EngineSampler, GreedyIsArgmaxLowestOnTies) {
  SamplerScratch s;
  std::vector<float> l = {1.0f, 3.0f, -2.0f, 3.0f};
  EXPECT_EQ(sample_token(l.data(), 4, {}, 0, 0, s), 1);
}

// Logits one and two ulps apart (found by PropertySampling.TopOneIsGreedy): divided by
// 0.7 they round to one value, so ranking the scaled values would hand the top slot to
// the lowest id. top-k = 1 must still keep the token greedy picks, the largest raw logit.
TEST(EngineSampler, TopOneKeepsTheGreedyTokenWhenScalingTiesLogits) {
  const float base = -30.0f;
  const float up1 = std::nextafter(base, 0.0f), up2 = std::nextafter(up1, 0.0f);
  const std::vector<float> l = {up1, base, base, base, base, up2};
  ASSERT_EQ(l[0] / 0.7f, l[5] / 0.7f) << "the case needs the scaled logits to tie";
  SamplerScratch s;
  for (std::uint64_t pos = 0; pos < 20; ++pos) EXPECT_EQ(sample_token(l.data(), 6, {0.7f, 1, 1.0f, 5}, 0, pos, s), 5);
}

// The token is a function of (logits, params, sequence, position) only.
TEST(EngineSampler, CounterBasedAndDeterministic) {
  SCOPED_TRACE(test::seed_trace());
  const auto l = random_logits(200, test::test_seed());
  SamplerScratch s;
  SamplingParams p{1.0f, 0, 1.0f, 1234};
  std::set<int> seen;
  for (int pos = 0; pos < 100; ++pos) {
    const int t = sample_token(l.data(), 200, p, 3, pos, s);
    EXPECT_EQ(t, sample_token(l.data(), 200, p, 3, pos, s));
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 5u) << "temperature 1 over 200 spread logits must not collapse to one token";
}

TEST(EngineSampler, TopKAndTopPRestrictTheCandidates) {
  SCOPED_TRACE(test::seed_trace());
  const int n = 100;
  const auto l = random_logits(n, test::test_seed() + 1);
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
  const std::set<int> top5(order.begin(), order.begin() + 5);
  SamplerScratch s;
  std::set<int> seen;
  for (int pos = 0; pos < 300; ++pos) {
    const int t = sample_token(l.data(), n, {2.0f, 5, 1.0f, 9}, 0, pos, s);
    EXPECT_TRUE(top5.count(t)) << "token " << t << " outside the top 5";
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 1u);
  // A nucleus smaller than the top token's mass keeps only the top token.
  for (int pos = 0; pos < 50; ++pos) EXPECT_EQ(sample_token(l.data(), n, {1.0f, 0, 1e-6f, 9}, 0, pos, s), order[0]);
}

// The nucleus is the shortest prefix of the sorted tokens whose mass reaches top_p: the
// token that crosses the threshold belongs to it. Probabilities 0.4, 0.3, 0.2, 0.1: top_p
// 0.65 keeps exactly {0, 1} (cumulative 0.4 < 0.65 <= 0.7), top_p 0.35 keeps {0}. The
// margins (0.05 of the mass) dwarf FP32 rounding, so the kept sets are exact. Among 400
// draws from {0: 4/7, 1: 3/7} each token appears unless the draws are astronomically
// unlikely ((4/7)^400 < 1e-97), whatever the seed.
TEST(EngineSampler, TopPKeepsTheTokenThatCrossesTheThreshold) {
  SCOPED_TRACE(test::seed_trace());
  const std::vector<float> l = {std::log(4.0f), std::log(3.0f), std::log(2.0f), std::log(1.0f)};
  SamplerScratch s;
  std::vector<int> count(4, 0);
  for (int pos = 0; pos < 400; ++pos) ++count.at(sample_token(l.data(), 4, {1.0f, 0, 0.65f, test::test_seed()}, 1, pos, s));
  EXPECT_GT(count[0], 0);
  EXPECT_GT(count[1], 0) << "the token whose mass crosses top_p must stay in the nucleus";
  EXPECT_EQ(count[2] + count[3], 0) << "tokens after the crossing one must be cut";
  for (int pos = 0; pos < 100; ++pos) EXPECT_EQ(sample_token(l.data(), 4, {1.0f, 0, 0.35f, test::test_seed()}, 1, pos, s), 0);
}

// At a low temperature the scaled logits (here up to 1600) are far beyond exp's range:
// subtracting the maximum first gives weights exp(0) = 1, exp(-10), and exactly 0 for
// the rest (arguments below -104 round to +0), so only tokens 0 and 1 can be drawn
// (the draw u * mass, u < 1, always falls inside the first two tokens' mass).
TEST(EngineSampler, LowTemperatureStaysInsideExpRange) {
  SCOPED_TRACE(test::seed_trace());
  const std::vector<float> l = {80.0f, 79.5f, 60.0f, 0.0f, -50.0f};
  SamplerScratch s;
  int top = 0;
  for (int pos = 0; pos < 200; ++pos) {
    const int t = sample_token(l.data(), 5, {0.05f, 0, 1.0f, test::test_seed()}, 2, pos, s);
    ASSERT_TRUE(t == 0 || t == 1) << "token " << t << " has probability 0 at temperature 0.05";
    top += t == 0;
  }
  EXPECT_GT(top, 0);
}

}  // namespace
}  // namespace kvfid::engine
