#pragma once
// RMSNorm: out[t] = (x[t] / sqrt(mean(x[t]^2) + eps)) * weight, one row per token.
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid {

// out, x: [tokens, dim]; weight: [dim]; eps: one exact value.
void rms_norm(MpArray& out, const MpArray& x, const MpArray& weight, mpfr_srcptr eps, int tokens, const MpArith& arith,
              int threads);

}  // namespace kvfid
