#pragma once
// The engine over a whole token sequence, producing the golden's taps (F32 values held
// as double) so every comparison works on one currency, plus one tap of its own:
//   logprobs  [T, vocab]  the engine's log-softmax of each logits row (Engine::logprobs)
// Goldens have no logprobs; comparisons against a golden walk the golden's taps, so a
// dump's logprobs is ignored there and compared only engine to engine (kvfid bitwise).
#include <vector>

#include "cuda/engine/engine_options.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

inline constexpr const char* kLogprobsTap = "logprobs";

// What engine_forward returns, in order: tap_specs(config, tokens, selection), then logprobs.
std::vector<TapSpec> engine_tap_specs(const ModelConfig& config, int tokens, const TapSelection& selection);

TapSet engine_forward(const Model& model, const std::vector<int>& tokens, const EngineOptions& options);

}  // namespace kvfid::engine
