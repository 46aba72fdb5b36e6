#pragma once
// Op map (attention; docs/ops.md): reference reference/mp/attention.h, softmax.h | shared cuda/common/attention_math.h, portable_math.h | kernel attn_prefill_kernel, attn_decode_kernel, attn_combine_kernel | twin TwinBackend::attend | tests MpKernels.*, tests/cuda/properties/
// Softmax in place: subtract the maximum, exponentiate, sum in order, divide.
#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_arith.h"

namespace kvfid::ref {

// x: [n] at the arithmetic's precision; scratch: [2] of the same precision.
// radii: null, or [n] radii of x (enclosure.h) replaced by the probabilities' radii
// (enclosure.h's softmax rule, applied to the row as a whole). The midpoints are the same
// bits either way.
void softmax_in_place(mpfr_ptr x, int n, BallArith& ball, mpfr_ptr scratch, mpfr_ptr radii = nullptr);
inline void softmax_in_place(mpfr_ptr x, int n, const MpArith& arith, mpfr_ptr scratch) {
  BallArith ball(arith);
  softmax_in_place(x, n, ball, scratch);
}

}  // namespace kvfid::ref
