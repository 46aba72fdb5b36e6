#pragma once
// `--sample temperature=T,top_k=K,top_p=P,seed=S`: the sampler's parameters
// (cuda/engine/sampler.h), parsed once here. Keys may come in any order, each at most
// once; a missing key keeps SamplingParams' default (temperature 0 = greedy).
#include <string>

#include "cuda/engine/sampler.h"

namespace kvfid::cli {
using namespace kvfid::engine;  // the engine's sampler

// Throws InputError(flag, ...) naming the offending key or value.
SamplingParams parse_sampling_spec(const std::string& spec, const std::string& flag);

// The canonical spelling of `params` (every key, fixed order), for metadata.
std::string to_string(const SamplingParams& params);

}  // namespace kvfid::cli
