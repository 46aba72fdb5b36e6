#include "reference/mp/scaled_bounds.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace kvfid::ref {

namespace {

// 2^-1000 bounds every scaled value below it; above it ldexp is exact (a 53-bit
// significand stays normal down to 2^-1022).
constexpr long kSmallestScaledExponent = -1000;

// A shift below this leaves no bit of any finite double (the largest, below 2^1024, goes
// under 2^-1075 and rounds to 0); clamping it keeps the int conversion defined.
constexpr long kShiftFloor = -2200;

// The next double above x, an upper bound of the exact result x was rounded to nearest
// from (x >= 0 or +Inf): for a positive finite double, its bit pattern plus one;
// 2^-1074 for a zero. Written out because std::nextafter is a library call.
double up(double x) {
  if (!(x > 0)) return std::numeric_limits<double>::denorm_min();
  return x < INFINITY ? std::bit_cast<double>(std::bit_cast<std::uint64_t>(x) + 1) : x;
}

}  // namespace

ScaledBounds scaled_magnitudes(mpfr_srcptr x, std::size_t n, std::ptrdiff_t stride) {
  ScaledBounds b;
  b.d.assign(n, 0.0);
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    mpfr_srcptr v = x + std::ptrdiff_t(i) * stride;
    if (mpfr_regular_p(v)) {
      const long e = long(mpfr_get_exp(v));
      b.scale = any ? std::max(b.scale, e) : e;
      any = true;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    mpfr_srcptr v = x + std::ptrdiff_t(i) * stride;
    if (mpfr_zero_p(v)) continue;
    if (!mpfr_number_p(v)) {
      b.d[i] = INFINITY;
      continue;
    }
    long e = 0;
    const double m = std::fabs(mpfr_get_d_2exp(&e, v, MPFR_RNDA));  // |v| <= m 2^e, m <= 1
    const long shift = e - b.scale;                                 // <= 0: e <= EXP(v) <= scale
    b.d[i] = shift < kSmallestScaledExponent ? std::ldexp(1.0, int(kSmallestScaledExponent)) : std::ldexp(m, int(shift));
  }
  return b;
}

void RadiusSum::add_computed(double s, int n, int nonzero, long scale) {
  if (n < 0 || n >= kMaxSumTerms || nonzero < 0 || nonzero > n)
    throw std::logic_error("RadiusSum: term count out of range");
  if (std::isnan(s)) s = INFINITY;
  // Every product with a zero factor is exactly 0 (a float64 product of 0 and a finite
  // number): such a sum, an empty one included, is exactly 0 -- an exact zero's radius
  // stays 0, so the zero certifies as exact.
  if (nonzero == 0 && s == 0.0) return;
  // S <= s (1 + kSumInflation) + m 2^-1074 (m: the products that can underflow, those
  // of two nonzero factors), each operation rounded up; m 2^-1074 is exact (a multiple
  // of the smallest subnormal below 2^-1044).
  const double bound = up(up(s * (1.0 + kSumInflation)) + double(nonzero) * kSumUnderflowPerTerm);
  if (d_ == 0.0) {
    d_ = bound, scale_ = scale;
    return;
  }
  // Both at the larger scale; the smaller one shifted down (ldexp rounds only where it
  // leaves the normal range, and up() covers that; a shift past the subnormals leaves 0,
  // which up() makes 2^-1074, still above).
  if (scale > scale_) {
    d_ = up(std::ldexp(d_, int(std::max(scale_ - scale, kShiftFloor))));
    scale_ = scale;
    d_ = up(d_ + bound);
  } else {
    d_ = up(d_ + up(std::ldexp(bound, int(std::max(scale - scale_, kShiftFloor)))));
  }
}

void RadiusSum::add_products(const double* a, std::ptrdiff_t as, const double* b, std::ptrdiff_t bs, int n,
                             long scale) {
  double s = 0.0;
  int nonzero = 0;
  for (int j = 0; j < n; ++j) {
    const double x = a[j * as], y = b[j * bs];
    s += x * y;
    nonzero += int(x != 0.0) & int(y != 0.0);  // no branch in the hot loop
  }
  add_computed(s, n, nonzero, scale);
}

void RadiusSum::flush_into(mpfr_ptr r, mpfr_ptr tmp) const {
  if (d_ == 0.0) return;
  mpfr_set_d(tmp, d_, MPFR_RNDU);
  mpfr_mul_2si(tmp, tmp, scale_, MPFR_RNDU);  // exact in MPFR's widest exponent range
  mpfr_add(r, r, tmp, MPFR_RNDU);
}

void add_sum_bound(mpfr_ptr r, const double* a, std::ptrdiff_t as, const double* b, std::ptrdiff_t bs, int n,
                   long scale, mpfr_ptr tmp) {
  RadiusSum sum;
  sum.add_products(a, as, b, bs, n, scale);
  sum.flush_into(r, tmp);
}

}  // namespace kvfid::ref
