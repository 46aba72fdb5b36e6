#pragma once
// The plain algorithm with every intermediate rounded to a chosen binary format:
// the error a straightforward implementation at that precision makes, measured
// against the exact golden. It is the baseline of the engine's gate
// (FlashAttention's rule: engine error <= k x baseline error).
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid {

struct Emulation {
  FloatFormat arithmetic = FloatFormat::f32;  // every +, -, *, /, sqrt, exp result
  FloatFormat weights = FloatFormat::f32;     // weights rounded once on load
  FloatFormat kv = FloatFormat::f32;          // K and V rounded when stored in the cache
};

// Same taps and shapes as the golden; values are the emulated results, exactly.
TapSet emulated_forward(const Model& model, const std::vector<int>& tokens, const Emulation& emulation,
                        TapSelection selection);

}  // namespace kvfid
