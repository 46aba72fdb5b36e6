#pragma once
// Named model shapes of `kvfid fixture`: tiny ones for fast tests, and the
// configurations of public models (their weights are generated, never downloaded).
#include <optional>
#include <string>
#include <vector>

#include "reference/model/config.h"

namespace kvfid::ref {

// tiny-llama (MHA), tiny-qwen2 (7:1 GQA, q/k/v bias, theta 1e6, eps 1e-6), tiny-mqa
// (one KV head, tied classifier): small enough to build in memory in any test.
std::vector<std::string> synthetic_shape_names();
// qwen2.5-0.5b, qwen2.5-7b, llama-3.2-1b, llama-3.1-8b: the public config.json facts.
// The Llama 3.x models' "llama3" rope_scaling is not modelled by kvfid: these configs
// are plain RoPE with the published theta.
std::vector<std::string> real_shape_names();
// Any of the above. Throws InputError(source, ...) for an unknown name.
ModelConfig synthetic_shape(const std::string& name, const std::string& source = "shape");

// The smallest vocabulary of a reduced variant: the committed prompts short, medium and
// long (fixtures/prompts) use ids below 128, and tiny-mqa's 128 is the smallest
// vocabulary any fixture has, so every such prompt runs on every variant.
inline constexpr int kMinReducedVocab = 128;

// `full` cut to its first `layers` layers and `vocab` token ids (nullopt keeps either as
// it is). Throws InputError(source, ...) unless 1 <= layers <= full.n_layers and
// kMinReducedVocab <= vocab <= full.vocab.
ModelConfig reduced_shape(const ModelConfig& full, std::optional<long long> layers, std::optional<long long> vocab,
                          const std::string& source);

}  // namespace kvfid::ref
