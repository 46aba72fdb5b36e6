#include "reference/metrics/attention_shape.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

namespace kvfid::ref {
namespace {

TEST(AttentionShape, FromAModelConfigWithGroupedQueryHeads) {
  ModelConfig config;
  config.n_heads = 8;
  config.n_kv_heads = 2;
  config.head_dim = 16;
  const AttentionShape shape = attention_shape(config, 5, 0);
  EXPECT_EQ(shape.tokens, 5);
  EXPECT_EQ(shape.q_values(), 5u * 8 * 16);
  EXPECT_EQ(shape.kv_values(), 5u * 2 * 16);
  for (int h = 0; h < 8; ++h) EXPECT_EQ(shape.kv_head_of(h), config.kv_head_of(h)) << h;
}

// A layer's score rule: Gemma 2's scale and cap, and a window only on its windowed layers.
TEST(AttentionShape, CarriesTheLayersScoreRule) {
  ModelConfig config;
  config.n_heads = 4, config.n_kv_heads = 2, config.head_dim = 16, config.dim = 64, config.sliding_window = 3;
  apply_gemma2(config, 25, 4.0, 3.0);
  const AttentionShape even = attention_shape(config, 9, 0), odd = attention_shape(config, 9, 1);
  EXPECT_EQ(even.window, 3);
  EXPECT_EQ(odd.window, 0);
  EXPECT_EQ(even.first_key(7), 5);
  EXPECT_EQ(odd.first_key(7), 0);
  EXPECT_EQ(even.first_key(1), 0);
  // 10 / sqrt(25) = 2, then 4 tanh(2 / 4).
  EXPECT_NEAR(double(even.score(10)), 4 * std::tanh(0.5), 1e-15);
  ModelConfig one_head;
  one_head.n_heads = 1, one_head.n_kv_heads = 1, one_head.head_dim = 16;
  const AttentionShape plain = attention_shape(one_head, 2, 0);
  EXPECT_EQ(double(plain.score(8)), 2.0);  // 8 / sqrt(16), no cap
}

TEST(AttentionShape, RejectsImpossibleShapesAndValues) {
  EXPECT_THROW(check_attention_shape({0, 1, 1, 1}, "t"), std::invalid_argument);
  EXPECT_THROW(check_attention_shape({1, 3, 2, 1}, "t"), std::invalid_argument);
  EXPECT_NO_THROW(check_attention_shape({1, 4, 2, 1}, "t"));
  EXPECT_THROW(check_values(std::vector<double>{1, 2}, 3, "t"), std::invalid_argument);
  EXPECT_THROW(check_values(std::vector<double>{1, std::numeric_limits<double>::infinity()}, 2, "t"), std::invalid_argument);
  EXPECT_NO_THROW(check_values(std::vector<double>{1, 2}, 2, "t"));
}

}  // namespace
}  // namespace kvfid::ref
