#pragma once
// The emulated baseline's matrix-vector products (reference/mp/projection.h's ieee()
// policy) computed natively: out[t][r] = ((w_r0 x_t0 + w_r1 x_t1) + ...) + b_r, each
// product and each partial sum rounded to the format, in column order from +0, then the
// bias added. Output rows are split across threads; each output is one thread's
// sequential sum, so the bits do not depend on the thread count.
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/model/matrix.h"

namespace kvfid::ref::native {

// out: [tokens, m.rows] in the format; x: [tokens, m.cols] in the format; bias: [m.rows]
// or empty, any float64 values.
template <FloatFormat F>
void project(std::vector<float>& out, const Matrix& m, const std::vector<float>& x, const std::vector<double>& bias,
             int tokens, int threads);

}  // namespace kvfid::ref::native
