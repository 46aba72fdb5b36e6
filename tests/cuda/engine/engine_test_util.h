#pragma once
// Small synthetic models and bitwise comparison of tap sets for the engine tests.
#include <cstdint>
#include <string>
#include <vector>

#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

// A tiny model of the given attention shape (dim = n_heads * head_dim).
ModelConfig tiny_config(int n_heads, int n_kv_heads, int head_dim, RopeStyle rope, bool bias, int max_seq = 512);
Model tiny_model(const ModelConfig& config, std::uint64_t seed);
std::vector<int> prompt_tokens(int count, int vocab, std::uint64_t seed);

// Empty when every tap has the same name, shape and FP32 bits; otherwise the first
// difference (tap, index, both values). NaN or Inf anywhere is a difference too.
std::string bitwise_difference(const TapSet& a, const TapSet& b);
// Empty when all values are finite and some are nonzero in every tap (gross failures).
std::string gross_failure(const TapSet& taps);

}  // namespace kvfid::test
