#pragma once
// An independent float64 forward pass (Eigen, IEEE binary64, glibc libm), separate
// from the MPFR code: a second implementation of the same semantics whose error
// against the exact golden is bounded a priori by f64_error_bound.h. Agreement
// within that bound cross-checks both the golden and this pass.
#include <vector>

#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid::ref {

// Same taps, names and shapes as the golden (tap_specs). Throws InputError("forward",
// ...) when a token is out of range or the prompt exceeds the context.
TapSet forward_f64(const Model& model, const std::vector<int>& tokens, const TapSelection& selection);

}  // namespace kvfid::ref
