#pragma once
// Op map (SwiGLU, GeGLU; docs/ops.md): reference reference/mp/swiglu.h | shared cuda/common/portable_math.h (silu, gelu_tanh) | kernel gated_kernel | twin TwinBackend::run (FFN) | tests EnginePortableMath.SiluAccuracy, EnginePortableMath.GeluTanhAccuracy, EngineTwinReference.*
// The gate of the feed-forward block: gate <- act(gate) * up, with
//   silu(z) = z / (1 + exp(-z))                                    (SwiGLU)
//   gelu_tanh(z) = (0.5 z) (1 + tanh(C (z + A z^3))),              (GeGLU, Gemma)
//     C = sqrt(2/pi), A = 0.044715, z^3 = (z z) z, each step rounded once.
#include "reference/model/config.h"
#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// gate, up: [tokens, hidden], same size; gate is overwritten. gate_radii: when set, the
// radii of gate (enclosure.h), overwritten likewise; up_radii: up's, or null (exact).
void swiglu_in_place(MpArray& gate, const MpArray& up, const MpArith& arith, int threads, MpArray* gate_radii = nullptr,
                     const MpArray* up_radii = nullptr);
// GeGLU's constants as gated_in_place computes them in `ball`'s arithmetic: c = sqrt(2/pi)
// (pi, the quotient and the root each rounded) and a = 0.044715 (rounded); the native
// emulation reads them from here.
void gelu_tanh_constants(BallArith& ball, Ball c, Ball a);
// The same with the model's activation.
void gated_in_place(Activation activation, MpArray& gate, const MpArray& up, const MpArith& arith, int threads,
                    MpArray* gate_radii = nullptr, const MpArray* up_radii = nullptr);

}  // namespace kvfid::ref
