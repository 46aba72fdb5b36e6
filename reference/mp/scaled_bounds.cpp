#include "reference/mp/scaled_bounds.h"

#include <cmath>
#include <stdexcept>

namespace kvfid::ref {

namespace {

// 2^-1000 bounds every scaled value below it; above it ldexp is exact (a 53-bit
// significand stays normal down to 2^-1022).
constexpr long kSmallestScaledExponent = -1000;

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

void add_computed_sum_bound(mpfr_ptr r, double s, int n, long scale, mpfr_ptr tmp) {
  if (n < 0 || n >= kMaxSumTerms) throw std::logic_error("add_computed_sum_bound: term count out of range");
  if (std::isnan(s)) s = INFINITY;
  mpfr_set_d(tmp, s, MPFR_RNDU);
  mpfr_mul_d(tmp, tmp, 1.0 + kSumInflation, MPFR_RNDU);
  mpfr_add_d(tmp, tmp, double(n) * kSumUnderflowPerTerm, MPFR_RNDU);  // n 2^-1074: exact
  mpfr_mul_2si(tmp, tmp, scale, MPFR_RNDU);
  mpfr_add(r, r, tmp, MPFR_RNDU);
}

void add_sum_bound(mpfr_ptr r, const double* a, std::ptrdiff_t as, const double* b, std::ptrdiff_t bs, int n,
                   long scale, mpfr_ptr tmp) {
  double s = 0.0;
  for (int j = 0; j < n; ++j) s += a[j * as] * b[j * bs];
  add_computed_sum_bound(r, s, n, scale, tmp);
}

}  // namespace kvfid::ref
