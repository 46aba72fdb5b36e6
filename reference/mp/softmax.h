#pragma once
// Softmax in place: subtract the maximum, exponentiate, sum in order, divide.
#include "reference/mp/mp_arith.h"

namespace kvfid {

// x: [n] at the arithmetic's precision; scratch: [2] of the same precision.
void softmax_in_place(mpfr_ptr x, int n, const MpArith& arith, mpfr_ptr scratch);

}  // namespace kvfid
