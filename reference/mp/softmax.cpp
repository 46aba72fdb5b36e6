#include "reference/mp/softmax.h"

namespace kvfid::ref {

void softmax_in_place(mpfr_ptr x, int n, BallArith& ball, mpfr_ptr scratch, mpfr_ptr radii, mpfr_ptr radius_scratch) {
  const bool track = radii != nullptr;
  auto at = [&](int j) { return Ball{x + j, track ? radii + j : nullptr}; };
  const Ball max{scratch, track ? radius_scratch : nullptr}, sum{scratch + 1, track ? radius_scratch + 1 : nullptr};
  int largest = 0;
  for (int j = 1; j < n; ++j)
    if (mpfr_greater_p(x + j, x + largest)) largest = j;
  mpfr_set(max.m, x + largest, MPFR_RNDN);  // exact: same precision
  if (track) mpfr_set(max.r, radii + largest, MPFR_RNDU);
  mpfr_set_zero(sum.m, 1);
  if (track) mpfr_set_zero(sum.r, 1);
  for (int j = 0; j < n; ++j) {
    ball.sub(at(j), cball(at(j)), cball(max));
    // The true difference of a value with itself is exactly 0, as its midpoint is.
    if (track && j == largest) mpfr_set_zero(radii + j, 1);
    ball.exp(at(j), cball(at(j)));
    ball.add(sum, cball(sum), cball(at(j)));
  }
  for (int j = 0; j < n; ++j) ball.div(at(j), cball(at(j)), cball(sum));
}

}  // namespace kvfid::ref
