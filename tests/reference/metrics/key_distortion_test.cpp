#include "reference/metrics/key_distortion.h"

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// Products and sums in long double, one division or sqrt rounded to double; the
// closed forms take as many double operations: 16 double ULPs relative covers both.
constexpr double kDistortionClosedForm = 16 * std::numeric_limits<double>::epsilon();

// KL(softmax(a) || softmax(b)) written out in double, for the closed forms.
double naive_kl(const std::vector<double>& a, const std::vector<double>& b) {
  double za = 0, zb = 0;
  for (double v : a) za += std::exp(v);
  for (double v : b) zb += std::exp(v);
  double kl = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double p = std::exp(a[i]) / za, q = std::exp(b[i]) / zb;
    kl += p * std::log(p / q);
  }
  return kl;
}

// One head, T = 2, head_dim 2. Queries q0 = (1, 0), q1 = (0, 2); golden keys
// k0 = (1, 0), k1 = (0, 1); the stored k0 is off by (0, 1/2), k1 is exact.
//   (t, j) = (0, 0): q0·Δk0 = 0            -> 0
//   (t, j) = (1, 0): q1·Δk0 = 1, |q1||k0| = 2 -> 1/2
//   (t, j) = (1, 1): Δk1 = 0               -> 0
// Attention at t = 1: golden scores (0, 2)/sqrt 2, read scores (1, 2)/sqrt 2.
TEST(KeyDistortion, AHandMadeKeyErrorByHand) {
  const AttentionShape shape{2, 1, 1, 2};
  const std::vector<double> q = {1, 0, 0, 2};
  const std::vector<double> k = {1, 0, 0, 1};
  const std::vector<double> stored = {1, 0.5, 0, 1};
  const std::vector<KeyDistortion> d = key_distortion_per_query_head(q, k, {stored}, shape);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NEAR(d[0].qk_mean, 0.5 / 3, kDistortionClosedForm);
  EXPECT_EQ(d[0].qk_max, 0.5);
  EXPECT_EQ(d[0].qk_max_t, 1);
  EXPECT_EQ(d[0].qk_max_j, 0);
  const double r = std::sqrt(2.0);
  const double kl = naive_kl({0, 2 / r}, {1 / r, 2 / r});
  ASSERT_GT(kl, 0.01);
  // naive_kl is plain double: its few roundings on values of order 1 against a KL of
  // order 0.05 cost up to ~1e-14 relative.
  constexpr double kNaiveKl = 1e-13;
  EXPECT_NEAR(d[0].attention_kl_max, kl, kNaiveKl * kl);
  EXPECT_EQ(d[0].attention_kl_max_t, 1);
  EXPECT_NEAR(d[0].attention_kl_mean, kl / 2, kNaiveKl * kl);  // position 0 contributes 0
}

TEST(KeyDistortion, ExactKeysDistortNothing) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> value(0.0, 1.0);
  const AttentionShape shape{5, 4, 2, 3};
  std::vector<double> q(shape.q_values()), k(shape.kv_values());
  for (double& v : q) v = value(rng);
  for (double& v : k) v = value(rng);
  for (const KeyDistortion& d : key_distortion_per_query_head(q, k, {k}, shape)) {
    EXPECT_EQ(d.qk_mean, 0.0);
    EXPECT_EQ(d.qk_max, 0.0);
    EXPECT_EQ(d.attention_kl_mean, 0.0);
    EXPECT_EQ(d.attention_kl_max, 0.0);
  }
}

// Four query heads on two KV heads: heads 0-1 read KV head 0, heads 2-3 KV head 1.
// An error in KV head 1 shows in query heads 2 and 3 only.
TEST(KeyDistortion, GroupedQueryHeadsReadTheirOwnKvHead) {
  const AttentionShape shape{3, 4, 2, 2};
  std::vector<double> q(shape.q_values(), 1.0), k(shape.kv_values());
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = 0.5 + 0.25 * double(i % 5);
  std::vector<double> stored = k;
  for (int t = 0; t < shape.tokens; ++t) stored[(t * 2 + 1) * 2 + 0] += 0.125;  // KV head 1, d = 0
  const std::vector<KeyDistortion> d = key_distortion_per_query_head(q, k, {stored}, shape);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].qk_max, 0.0);
  EXPECT_EQ(d[1].qk_max, 0.0);
  EXPECT_GT(d[2].qk_max, 0.0);
  EXPECT_EQ(d[2].qk_max, d[3].qk_max);  // the same queries on the same keys
}

// Hot window: every key read hot (cold_end 0) sees the exact hot copies, however wrong
// the cold ones; cold_end t + 1 reads everything cold, as with no hot form.
TEST(KeyDistortion, KeysReadHotAreTheHotForm) {
  const AttentionShape shape{2, 1, 1, 2};
  const std::vector<double> q = {1, 0, 0, 2};
  const std::vector<double> k = {1, 0, 0, 1};
  const std::vector<double> cold = {1, 0.5, 0, 1};
  const std::vector<int> all_hot = {0, 0}, all_cold = {1, 2}, k0_cold = {1, 1};
  const KeyDistortion hot = key_distortion_per_query_head(q, k, {cold, k, all_hot}, shape)[0];
  EXPECT_EQ(hot.qk_max, 0.0);
  EXPECT_EQ(hot.attention_kl_max, 0.0);
  const KeyDistortion read_cold = key_distortion_per_query_head(q, k, {cold, k, all_cold}, shape)[0];
  const KeyDistortion no_hot = key_distortion_per_query_head(q, k, {cold}, shape)[0];
  EXPECT_EQ(read_cold.qk_mean, no_hot.qk_mean);
  EXPECT_EQ(read_cold.attention_kl_mean, no_hot.attention_kl_mean);
  // t = 1 reads k0 cold (cold_end 1): the erroneous pair (1, 0) is still seen.
  EXPECT_EQ(key_distortion_per_query_head(q, k, {cold, k, k0_cold}, shape)[0].qk_max, 0.5);
}

TEST(KeyDistortion, AZeroGoldenKeyReadAsNonZeroIsAnInfiniteRelativeError) {
  const AttentionShape shape{1, 1, 1, 2};
  const std::vector<double> q = {1, 1}, k = {0, 0}, stored = {0.5, 0};
  EXPECT_EQ(key_distortion_per_query_head(q, k, {stored}, shape)[0].qk_max, std::numeric_limits<double>::infinity());
  EXPECT_EQ(key_distortion_per_query_head(q, k, {k}, shape)[0].qk_max, 0.0);
}

TEST(KeyDistortion, RejectsBadSizesAndColdEnds) {
  const AttentionShape shape{2, 1, 1, 2};
  const std::vector<double> four(4, 1.0);
  const std::vector<int> beyond = {0, 3}, short_list = {0};
  EXPECT_THROW(key_distortion_per_query_head(four, four, {four, four, beyond}, shape), std::invalid_argument);
  EXPECT_THROW(key_distortion_per_query_head(four, four, {four, four, short_list}, shape), std::invalid_argument);
  EXPECT_THROW(key_distortion_per_query_head(four, four, {four, {}, std::vector<int>{0, 0}}, shape),
               std::invalid_argument);
  EXPECT_THROW(key_distortion_per_query_head(std::vector<double>(3, 1.0), four, {four}, shape), std::invalid_argument);
}

// An independent recomputation on random data in plain double: scores q·k and q·k̂
// taken separately (as a kernel would), softmax written out, means over pairs and
// positions. Scores of order 1 with differences of order 1e-2 lose ~1e-14 relative to
// cancellation in plain double; 1e-10 relative leaves a wide margin.
TEST(KeyDistortion, AgreesWithANaiveRecomputation) {
  SCOPED_TRACE(test::seed_trace());
  constexpr double kNaiveTolerance = 1e-10;
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> value(0.0, 1.0), error(0.0, 0.01);
  const AttentionShape shape{6, 2, 1, 4};
  std::vector<double> q(shape.q_values()), k(shape.kv_values()), stored(shape.kv_values());
  for (double& v : q) v = value(rng);
  for (std::size_t i = 0; i < k.size(); ++i) {
    k[i] = value(rng);
    stored[i] = k[i] + error(rng);
  }
  const std::vector<KeyDistortion> d = key_distortion_per_query_head(q, k, {stored}, shape);
  const int T = shape.tokens, H = shape.n_heads, D = shape.head_dim;
  for (int h = 0; h < H; ++h) {
    double qk_sum = 0, qk_max = 0, kl_sum = 0, kl_max = 0;
    for (int t = 0; t < T; ++t) {
      std::vector<double> s, s_read;
      for (int j = 0; j <= t; ++j) {
        double dot = 0, dot_read = 0, qq = 0, kk = 0;
        for (int i = 0; i < D; ++i) {
          const double qi = q[(t * H + h) * D + i], ki = k[j * D + i], ri = stored[j * D + i];
          dot += qi * ki;
          dot_read += qi * ri;
          qq += qi * qi;
          kk += ki * ki;
        }
        const double relative = std::fabs(dot_read - dot) / std::sqrt(qq * kk);
        qk_sum += relative;
        qk_max = std::max(qk_max, relative);
        s.push_back(dot / std::sqrt(double(D)));
        s_read.push_back(dot_read / std::sqrt(double(D)));
      }
      const double kl = naive_kl(s, s_read);
      kl_sum += kl;
      kl_max = std::max(kl_max, kl);
    }
    const double qk_mean = qk_sum / (T * (T + 1) / 2.0);
    EXPECT_NEAR(d[h].qk_mean, qk_mean, kNaiveTolerance * qk_mean);
    EXPECT_NEAR(d[h].qk_max, qk_max, kNaiveTolerance * qk_max);
    // The KL is second order in a score error of ~1e-2 (~1e-5) while the naive sum's
    // roundings are absolute: each of up to T = 6 terms p ln(p/q) is off by a few ULPs of
    // 1 from the roundings of p and q (6 * 8 eps, about 1e-14); 1e-13 with room.
    constexpr double kl_rounding = 1e-13;
    EXPECT_NEAR(d[h].attention_kl_mean, kl_sum / T, kNaiveTolerance * kl_sum / T + kl_rounding);
    EXPECT_NEAR(d[h].attention_kl_max, kl_max, kNaiveTolerance * kl_max + kl_rounding);
    EXPECT_GT(qk_mean, 1e-4);  // the case has errors to measure
  }
}

// The layer's score rule enters the attention KL: AHandMadeKeyErrorByHand's keys under a
// score scale of 4 (not head_dim 2) and a soft-cap of 0.5, then under a window of one key,
// where each query reads only its own key: no key error it could see at t = 1, and the
// q.k errors count only the pairs read.
TEST(KeyDistortion, TheLayersScaleCapAndWindowShapeTheAttention) {
  AttentionShape shape{2, 1, 1, 2};
  shape.score_scale_dim = 4, shape.softcap = 0.5;
  const std::vector<double> q = {1, 0, 0, 2};
  const std::vector<double> k = {1, 0, 0, 1};
  const std::vector<double> stored = {1, 0.5, 0, 1};
  auto capped = [](double dot) { return 0.5 * std::tanh(dot / 2 / 0.5); };
  const double kl = naive_kl({capped(0), capped(2)}, {capped(1), capped(2)});
  ASSERT_GT(kl, 1e-3);
  constexpr double kNaiveKl = 1e-13;  // as AHandMadeKeyErrorByHand
  EXPECT_NEAR(key_distortion_per_query_head(q, k, {stored}, shape)[0].attention_kl_max, kl, kNaiveKl * kl);
  shape.window = 1;
  const KeyDistortion d = key_distortion_per_query_head(q, k, {stored}, shape)[0];
  EXPECT_EQ(d.attention_kl_max, 0.0);
  EXPECT_EQ(d.qk_max, 0.0);  // (1, 0), the only erred pair, is not read
  EXPECT_EQ(d.qk_mean, 0.0);
}

}  // namespace
}  // namespace kvfid::ref
