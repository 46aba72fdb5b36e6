#include "cuda/engine/sampler.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid {
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

}  // namespace
}  // namespace kvfid
