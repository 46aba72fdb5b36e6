#include "reference/metrics/attention_stats.h"

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// A handful of double operations per weight over at most a few dozen keys: agreement
// to 1e-13 relative leaves two orders of magnitude above double epsilon (2.2e-16)
// times the operation count.
constexpr double kDoubleAgreement = 1e-13;

ModelConfig gqa_config() {
  ModelConfig c;
  c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
  return c;
}

TEST(AttentionStats, EntropyOfUniformAndOneHot) {
  const std::vector<double> uniform(5, 0.2);
  EXPECT_NEAR(attention_entropy(uniform.data(), 5), std::log(5.0), kDoubleAgreement);
  const double one_hot[] = {0, 0, 1, 0};
  EXPECT_EQ(attention_entropy(one_hot, 4), 0.0);
}

TEST(AttentionStats, ZeroQueryAttendsUniformly) {
  const ModelConfig c = gqa_config();
  const int keys = 7;
  std::vector<double> q(std::size_t(c.q_dim()), 0.0), k(std::size_t(keys) * c.kv_dim());
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = std::sin(double(i));
  const AttentionSummary s = attention_summary_from_qk(q.data(), k.data(), keys, c, 0);
  EXPECT_NEAR(s.entropy, std::log(double(keys)), kDoubleAgreement);
  EXPECT_NEAR(s.newest_weight, 1.0 / keys, kDoubleAgreement);
}

// A query aligned with one key and scaled up puts (nearly) all weight there.
TEST(AttentionStats, SharpQueryPutsItsWeightOnTheMatchingKey) {
  ModelConfig c;
  c.n_heads = 1, c.n_kv_heads = 1, c.head_dim = 2;
  const double q[] = {0, 2000};
  const double k[] = {1, 0, 0, 1};  // key 0 = e0, key 1 (newest) = e1
  const AttentionSummary s = attention_summary_from_qk(q, k, 2, c, 0);
  EXPECT_EQ(s.newest_weight, 1.0);  // key 0's weight exp(-2000/sqrt 2) underflows to 0
  EXPECT_EQ(s.entropy, 0.0);
}

// The probs-tap path and the q/k path agree when the tap holds the softmax of the same
// scores, computed here independently per head with GQA's head mapping.
TEST(AttentionStats, ProbsTapAndQueryKeyPathsAgree) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> normal(0, 1);
  const ModelConfig c = gqa_config();
  const int T = 9;
  std::vector<double> q(std::size_t(T) * c.q_dim()), k(std::size_t(T) * c.kv_dim());  // [T, heads, hd]
  for (double& v : q) v = normal(rng);
  for (double& v : k) v = normal(rng);
  TapTensor probs{"layers.0.attn.probs", {c.n_heads, T, T}, std::vector<double>(std::size_t(c.n_heads) * T * T, 0.0)};
  for (int h = 0; h < c.n_heads; ++h)
    for (int t = 0; t < T; ++t) {
      const int kv = h / (c.n_heads / c.n_kv_heads);
      std::vector<double> e(std::size_t(t) + 1);
      double sum = 0;
      for (int j = 0; j <= t; ++j) {
        double dot = 0;
        for (int d = 0; d < c.head_dim; ++d)
          dot += q[(std::size_t(t) * c.n_heads + h) * c.head_dim + d] * k[(std::size_t(j) * c.n_kv_heads + kv) * c.head_dim + d];
        sum += e[j] = std::exp(dot / std::sqrt(double(c.head_dim)));
      }
      for (int j = 0; j <= t; ++j) probs.values[(std::size_t(h) * T + t) * T + j] = e[j] / sum;
    }
  for (int t = 0; t < T; ++t) {
    const AttentionSummary a = attention_summary_from_probs(probs, t);
    const AttentionSummary b = attention_summary_from_qk(q.data() + std::size_t(t) * c.q_dim(), k.data(), t + 1, c, 0);
    EXPECT_NEAR(a.entropy, b.entropy, kDoubleAgreement * std::max(1.0, a.entropy)) << "t=" << t;
    EXPECT_NEAR(a.newest_weight, b.newest_weight, kDoubleAgreement) << "t=" << t;
  }
  EXPECT_EQ(attention_summary_from_probs(probs, 0).newest_weight, 1.0);  // one key: all the weight
}

// On a windowed, soft-capped layer the weights are the softmax of the capped scores of
// the window's keys only: with a window of 2 over 4 keys, two keys share the weight.
TEST(AttentionStats, TheQueryKeyPathReadsTheLayersWindowAndCap) {
  ModelConfig c;
  c.n_heads = 1, c.n_kv_heads = 1, c.head_dim = 2, c.dim = 2, c.sliding_window = 2;
  apply_gemma2(c, 1, 2.0, 0);
  const double q[] = {3, 0};
  const double k[] = {9, 0, 9, 0, 1, 0, 0, 1};  // keys 0, 1 would dominate; the window reads 2 and 3
  const AttentionSummary s = attention_summary_from_qk(q, k, 4, c, 0);
  const double s2 = 2 * std::tanh(3.0 / 2), s3 = 0;  // scores over sqrt(1), capped at 2
  const double p3 = std::exp(s3) / (std::exp(s2) + std::exp(s3));
  EXPECT_NEAR(s.newest_weight, p3, kDoubleAgreement);
  EXPECT_NEAR(s.entropy, -(p3 * std::log(p3) + (1 - p3) * std::log(1 - p3)), kDoubleAgreement);
  // Layer 1 is global: all four keys, the first two heavy (capped at 2 tanh(13.5)).
  EXPECT_LT(attention_summary_from_qk(q, k, 4, c, 1).newest_weight, p3);
}

TEST(AttentionStats, RejectsMisshapenInput) {
  const TapTensor flat{"x", {2, 3}, std::vector<double>(6)};
  EXPECT_THROW(attention_summary_from_probs(flat, 0), std::invalid_argument);
  const TapTensor square{"x", {1, 2, 2}, std::vector<double>(4)};
  EXPECT_THROW(attention_summary_from_probs(square, 2), std::invalid_argument);
  const ModelConfig c = gqa_config();
  const std::vector<double> q(std::size_t(c.q_dim()));
  EXPECT_THROW(attention_summary_from_qk(q.data(), nullptr, 0, c, 0), std::invalid_argument);
}

}  // namespace
}  // namespace kvfid::ref
