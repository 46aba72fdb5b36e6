#include "reference/metrics/attention_shape.h"

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
  const AttentionShape shape = attention_shape(config, 5);
  EXPECT_EQ(shape.tokens, 5);
  EXPECT_EQ(shape.q_values(), 5u * 8 * 16);
  EXPECT_EQ(shape.kv_values(), 5u * 2 * 16);
  for (int h = 0; h < 8; ++h) EXPECT_EQ(shape.kv_head_of(h), config.kv_head_of(h)) << h;
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
