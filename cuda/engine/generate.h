#pragma once
// Sampled generation: each sequence's prompt is prefilled (in chunks of
// EngineOptions::chunk), then n tokens are drawn one decode step at a time by
// sample_token (sampler.h), all sequences in one batch. A draw is keyed by (seed,
// sequence index, position of the token drawn), and the logits it reads are a row's own
// bits (the invariant split makes them independent of the batch), so a sequence's tokens
// are the same alone or beside others, and on the twin and the GPU.
#include <vector>

#include "cuda/engine/engine_options.h"
#include "cuda/engine/sampler.h"
#include "reference/model/model.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

// [prompts.size()][n] sampled token ids. Sequence i is keyed by index i. Throws
// InputError for a bad token, an empty prompt or n < 0.
std::vector<std::vector<int>> generate_tokens(const Model& model, const std::vector<std::vector<int>>& prompts,
                                              const EngineOptions& options, const SamplingParams& params, int n);

}  // namespace kvfid::engine
