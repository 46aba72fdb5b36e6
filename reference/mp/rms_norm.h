#pragma once
// Op map (RMSNorm; docs/ops.md): reference reference/mp/rms_norm.h | shared cuda/common/row_dot.h | kernel rmsnorm_kernel | twin rmsnorm() | tests MpKernels.RmsNormOfAConstantVector, EngineTwinReference.*
// RMSNorm: out[t] = (x[t] / sqrt(mean(x[t]^2) + eps)) * weight, one row per token.
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// out, x: [tokens, dim]; weight: [dim]; eps: one exact value.
// out_radii: when set, [tokens, dim] radii of out (enclosure.h) from x_radii (null: x exact).
void rms_norm(MpArray& out, const MpArray& x, const MpArray& weight, mpfr_srcptr eps, int tokens, const MpArith& arith,
              int threads, const MpArray* x_radii = nullptr, MpArray* out_radii = nullptr);

}  // namespace kvfid::ref
