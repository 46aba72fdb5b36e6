#include "reference/metrics/kv_layer_error.h"

#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

TEST(KvLayerError, RoundTripComparesTheColdFormAndAttentionTheKeysAsRead) {
  // One head, T = 2, head_dim 2; the cold keys are off, the hot ones exact and read
  // everywhere: the K round trip still sees the cold error, attention none.
  const AttentionShape shape{2, 1, 1, 2};
  const std::vector<double> q = {1, 0, 0, 2}, k = {1, 0, 0, 1}, v = {2, 2, 2, 2};
  const std::vector<double> cold = {1, 0.5, 0, 1};
  const std::vector<int> all_hot = {0, 0};
  const KvLayerError e = kv_layer_error(q, k, v, {cold, k, all_hot}, v, shape);
  ASSERT_EQ(e.k.size(), 1u);
  ASSERT_EQ(e.query_heads.size(), 1u);
  EXPECT_EQ(e.k[0].max_abs, 0.5);
  EXPECT_EQ(e.v[0].rmse, 0.0);
  EXPECT_EQ(e.query_heads[0].qk_max, 0.0);
}

TEST(KvLayerError, SummaryTakesMaximaAndMeansOverLayersAndHeads) {
  KvLayerError a, b;
  a.k = {{1, 0, 10}, {3, 0, 10}};  // relative 0.1, 0.3
  a.v = {{2, 0, 10}, {0, 0, 10}};
  b.k = {{1, 0, 20}, {1, 0, 20}};  // relative 0.05
  b.v = {{8, 0, 20}, {1, 0, 20}};  // relative 0.4
  a.query_heads = {{0.1, 0.5, 0, 0, 1e-3, 4e-3, 0}, {0.3, 0.6, 0, 0, 3e-3, 5e-3, 0}};
  b.query_heads = {{0.2, 0.9, 0, 0, 2e-3, 2e-3, 0}, {0.2, 0.1, 0, 0, 2e-3, 9e-3, 0}};
  const KvSummary s = summarize_kv({a, b});
  EXPECT_DOUBLE_EQ(s.k_relative_rmse_max, 0.3);
  EXPECT_DOUBLE_EQ(s.v_relative_rmse_max, 0.4);
  EXPECT_DOUBLE_EQ(s.qk_mean, 0.2);
  EXPECT_EQ(s.qk_max, 0.9);
  EXPECT_DOUBLE_EQ(s.attention_kl_mean, 2e-3);
  EXPECT_EQ(s.attention_kl_max, 9e-3);
  EXPECT_THROW(summarize_kv({}), std::invalid_argument);
  EXPECT_THROW(summarize_kv({KvLayerError{}}), std::invalid_argument);
}

}  // namespace
}  // namespace kvfid::ref
