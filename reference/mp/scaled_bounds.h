#pragma once
// Radii of exact dot products. The rounded-once dot y = RN_P(sum_j a_j b_j) of balls
// (a_j, ra_j), (b_j, rb_j) has radius
//   rounding(y) + sum_j ( |a_j| rb_j + |b_j| ra_j + ra_j rb_j )       (enclosure.h's product rule)
// and those sums have as many terms as the dot itself: in MPFR they would cost as much as
// the exact dot. They are summed in float64 instead, each vector of nonnegative bounds
// held as 2^scale * d_j with every d_j <= 1 a float64 rounded up, and the float64 sum
// bounded rigorously (sum_bound_up below). A weight (exact float64) enters unscaled.
#include <cstddef>
#include <vector>

#include <mpfr.h>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// The float64 sum s of n nonnegative products p_j = fl(a_j b_j), added in order from 0,
// bounds the exact sum S = sum a_j b_j as S <= s (1 - u)^-(n+1) + m 2^-1074: each
// product satisfies fl(ab) >= ab (1 - u) - 2^-1075 (gradual underflow), exactly 0 when a
// factor is 0 (m counts the others), each addition of nonnegative terms
// fl(x + y) >= (x + y)(1 - u) (sums of subnormals are exact), u = 2^-53.
// (1 - u)^-(n+1) <= 1 + 2 (n + 1) u while (n + 1) u <= 1/2; below kMaxSumTerms that is
// at most 1 + kSumInflation.
inline constexpr int kMaxSumTerms = 1 << 30;
inline constexpr double kSumInflation = 0x1p-21;  // 2 * 2^30 * 2^-53, rounded up
inline constexpr double kSumUnderflowPerTerm = 0x1p-1074;

// Nonnegative bounds (magnitudes or radii of MPFR numbers) as 2^scale * d.
struct ScaledBounds {
  long scale = 0;
  std::vector<double> d;  // each in [0, 1], rounded up; 2^-1000 stands for anything below it
};

// Upper bounds of |x_i| (radii are their own magnitudes), i < n, for x[0], x[stride], ...
// One scale for all: the largest EXP among them. A value that is not finite gives +Inf.
ScaledBounds scaled_magnitudes(mpfr_srcptr x, std::size_t n, std::ptrdiff_t stride = 1);
inline ScaledBounds scaled_magnitudes(const MpArray& x) { return scaled_magnitudes(x.data(), x.size()); }

// A nonnegative bound summed in float64 and added to a radius once: 2^scale * d, d
// rounded up after every float64 operation (up(x) = nextafter(RN(x), +Inf) >= x for
// x >= 0: round to nearest errs by at most half an ulp, subnormals included, and an
// underflow to 0 becomes 2^-1074). A dot product's radius has up to three sums at three
// scales (enclosure.h's product rule); each flushed into an MPFR radius on its own cost
// five MPFR operations, all three together three.
class RadiusSum {
 public:
  // += 2^scale * (an upper bound of) the exact sum of the n products a[j*as] * b[j*bs]
  // (nonnegative doubles). n < kMaxSumTerms.
  void add_products(const double* a, std::ptrdiff_t as, const double* b, std::ptrdiff_t bs, int n, long scale);
  // r += the total, rounded up; r is a radius (kRadiusBits); `tmp` is scratch of kRadiusBits.
  void flush_into(mpfr_ptr r, mpfr_ptr tmp) const;

 private:
  // The same for the float64 sum s of those n products, `nonzero` of them of two nonzero factors.
  void add_computed(double s, int n, int nonzero, long scale);

  double d_ = 0.0;  // the total is at most 2^scale_ * d_; +Inf: unbounded
  long scale_ = 0;
};

// r += (an upper bound of) 2^scale * the exact sum of the n products a[j*as] * b[j*bs]
// (nonnegative doubles), rounded up (one RadiusSum); `tmp` is scratch of kRadiusBits.
void add_sum_bound(mpfr_ptr r, const double* a, std::ptrdiff_t as, const double* b, std::ptrdiff_t bs, int n,
                   long scale, mpfr_ptr tmp);

}  // namespace kvfid::ref
