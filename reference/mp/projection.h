#pragma once
// The matrix-vector products of the forward, for every token at once:
// out[t] = W x[t] (+ bias). This is the hot kernel: one dot product per output value,
// exact(): W x + b summed exactly and rounded once (ExactAccumulator); ieee(): accumulated
// in column order, then the bias added. Output values split across threads.
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/mp_weights.h"

namespace kvfid {

// out: [tokens, W.rows] at the arithmetic's precision; x: [tokens, W.cols];
// bias: [W.rows] or empty.
void project(MpArray& out, const MpMatrix& w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads);

}  // namespace kvfid
