#pragma once
// The matrix-vector products of the forward, for every token at once:
// out[t] = W x[t] (+ bias). This is the hot kernel: one dot product per output value,
// accumulated in column order, output rows split across threads. Each thread decodes a
// weight row from its stored form into a float64 buffer and from there, exactly, into
// MPFR numbers of the weights' precision, then uses it for every token: the weights are
// never held in MPFR as a whole, and each output value is the same dot product of the
// same exact operands as when they were, so results do not change by a bit.
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/mp_weights.h"

namespace kvfid {

// out: [tokens, W.rows] at the arithmetic's precision; x: [tokens, W.cols];
// bias: [W.rows] or empty.
void project(MpArray& out, MpMatrixRef w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads);

}  // namespace kvfid
