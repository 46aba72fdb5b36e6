#include "reference/metrics/attention_shape.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace kvfid::ref {

AttentionShape attention_shape(const ModelConfig& config, int tokens, int layer) {
  return {tokens,           config.n_heads,          config.n_kv_heads,   config.head_dim, config.score_scale_dim(),
          config.attn_softcap, config.window_of(layer), config.v_head_dim()};
}

long double AttentionShape::score(long double dot) const {
  const long double s = dot / std::sqrt((long double)(score_scale_dim > 0 ? score_scale_dim : head_dim));
  return softcap > 0 ? softcap * std::tanh(s / softcap) : s;
}

void check_attention_shape(const AttentionShape& shape, const char* what) {
  if (shape.tokens <= 0 || shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.n_heads % shape.n_kv_heads != 0)
    throw std::invalid_argument(std::string(what) + ": attention shape must be positive with n_kv_heads dividing n_heads");
}

void check_values(std::span<const double> values, std::size_t expected, const char* what) {
  if (values.size() != expected)
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(values.size()) + " values, expected " +
                                std::to_string(expected));
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw std::invalid_argument(std::string(what) + ": non-finite value at flat index " + std::to_string(i));
}

}  // namespace kvfid::ref
