#pragma once
// Token sampling from a row of logits: greedy, temperature, top-k, top-p. The random
// draw is Philox4x32-10 keyed by the seed with counter (sequence id, position), so a
// sampled token depends only on the logits and those three numbers: the same on the
// twin and the GPU (whose logits are bit-identical) and whatever else is in the batch.
#include <cstdint>
#include <vector>

namespace kvfid::engine {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // 1: no nucleus cut
  std::uint64_t seed = 0;
};

struct SamplerScratch {
  std::vector<std::pair<float, int>> candidates;  // [vocab] (logit, then its unnormalized probability; id)
};

int sample_token(const float* logits, int vocab, const SamplingParams& params, std::uint64_t sequence,
                 std::uint64_t position, SamplerScratch& scratch);

}  // namespace kvfid::engine
