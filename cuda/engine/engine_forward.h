#pragma once
// The engine over a whole token sequence, producing the golden's taps (F32 values held
// as double) so every comparison works on one currency.
#include <vector>

#include "cuda/engine/engine_options.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid {

TapSet engine_forward(const Model& model, const std::vector<int>& tokens, const EngineOptions& options);

}  // namespace kvfid
