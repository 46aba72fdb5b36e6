#pragma once
// Op map (projection; docs/ops.md): reference reference/mp/projection.h | shared cuda/common/row_dot.h, warp_reduce.h | kernel matvec_kernel | twin matvec() | tests EngineWarpReduce.*, EngineTwinReference.*
// The matrix-vector products of the forward, for every token at once:
// out[t] = W x[t] (+ bias). This is the hot kernel: one dot product per output value,
// exact(): W x + b summed exactly and rounded once (ExactAccumulator); ieee(): accumulated
// in column order, then the bias added. Output rows are split across threads. Each thread
// decodes a weight row from its stored form into a float64 buffer (exact) and uses it for
// every token: the weights are never held in MPFR as a whole. With `shards`, output rows
// are also split across ranks (shards.h) and every rank ends with the whole output.
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

class Shards;

// out: [tokens, W.rows] at the arithmetic's precision; x: [tokens, W.cols];
// bias: [W.rows] or empty. out_radii: when set (exact() only), [tokens, W.rows] radii of
// out (enclosure.h) from x_radii ([tokens, W.cols], null: x exact); the weights and the
// bias are exact, so each is the dot's rounding plus sum_j |w_j| r_j (scaled_bounds.h).
void project(MpArray& out, MpMatrixRef w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads, Shards* shards = nullptr, const MpArray* x_radii = nullptr, MpArray* out_radii = nullptr);

}  // namespace kvfid::ref
