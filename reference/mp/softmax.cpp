#include "reference/mp/softmax.h"

namespace kvfid::ref {

void softmax_in_place(mpfr_ptr x, int n, const MpArith& arith, mpfr_ptr scratch) {
  mpfr_ptr max = scratch, sum = scratch + 1;
  mpfr_srcptr largest = x;
  for (int j = 1; j < n; ++j)
    if (mpfr_greater_p(x + j, largest)) largest = x + j;
  mpfr_set(max, largest, MPFR_RNDN);  // exact: same precision
  mpfr_set_zero(sum, 1);
  for (int j = 0; j < n; ++j) {
    arith.sub(x + j, x + j, max);
    arith.exp(x + j, x + j);
    arith.add(sum, sum, x + j);
  }
  for (int j = 0; j < n; ++j) arith.div(x + j, x + j, sum);
}

}  // namespace kvfid::ref
