#pragma once
// Op map (SwiGLU; docs/ops.md): reference reference/mp/swiglu.h | shared cuda/common/portable_math.h (silu) | kernel swiglu_kernel | twin TwinBackend::run (FFN) | tests EnginePortableMath.SiluAccuracy, EngineTwinReference.*
// The SwiGLU gate of the feed-forward block: gate <- silu(gate) * up, with
// silu(z) = z / (1 + exp(-z)).
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// gate, up: [tokens, hidden], same size; gate is overwritten. gate_radii: when set, the
// radii of gate (enclosure.h), overwritten likewise; up_radii: up's, or null (exact).
void swiglu_in_place(MpArray& gate, const MpArray& up, const MpArith& arith, int threads, MpArray* gate_radii = nullptr,
                     const MpArray* up_radii = nullptr);

}  // namespace kvfid::ref
