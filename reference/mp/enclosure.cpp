#include "reference/mp/enclosure.h"

#include <algorithm>
#include <cmath>

#include "reference/mp/certify.h"

namespace kvfid::ref {

namespace {

// |x| rounded up (down) to kRadiusBits.
void abs_up(mpfr_ptr r, mpfr_srcptr x) { mpfr_abs(r, x, MPFR_RNDU); }
void abs_down(mpfr_ptr r, mpfr_srcptr x) { mpfr_abs(r, x, MPFR_RNDD); }

// NaN radii (0 * Inf) mean "unbounded" like Inf; keeping them Inf keeps later sums Inf.
void unbounded_if_nan(mpfr_ptr r) {
  if (mpfr_nan_p(r)) mpfr_set_inf(r, 1);
}

}  // namespace

Enclosure::Enclosure() : s_(4, kRadiusBits) {}

void Enclosure::settle(mpfr_ptr r, mpfr_ptr propagated, mpfr_srcptr m, int ternary) {
  unbounded_if_nan(propagated);
  mpfr_set(r, propagated, MPFR_RNDU);  // exact: both of kRadiusBits
  add_rounding(r, m, ternary);
}

void Enclosure::add_rounding(mpfr_ptr r, mpfr_srcptr m, int ternary) {
  if (ternary == 0) return;
  if (!mpfr_number_p(m)) {
    mpfr_set_inf(r, 1);
    return;
  }
  // m is nonzero: MPFR rounds to nearest in the widest exponent range, where no nonzero
  // result rounds to zero.
  mpfr_set_ui_2exp(s_[3], 1, mpfr_get_exp(m) - mpfr_get_prec(m) - 1, MPFR_RNDU);  // exact: a power of two
  mpfr_add(r, r, s_[3], MPFR_RNDU);
}

void Enclosure::add(mpfr_ptr r, mpfr_srcptr ra, mpfr_srcptr rb, mpfr_srcptr m, int ternary) {
  mpfr_add(r, ra, rb, MPFR_RNDU);
  add_rounding(r, m, ternary);
}

void Enclosure::mul(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr b, mpfr_srcptr rb, mpfr_srcptr m,
                    int ternary) {
  mpfr_ptr t = s_[0], u = s_[1], sum = s_[2];
  abs_up(t, a);
  mpfr_mul(sum, t, rb, MPFR_RNDU);  // |a| rb
  abs_up(t, b);
  mpfr_mul(u, t, ra, MPFR_RNDU);  // |b| ra
  mpfr_add(sum, sum, u, MPFR_RNDU);
  mpfr_mul(u, ra, rb, MPFR_RNDU);  // ra rb
  mpfr_add(sum, sum, u, MPFR_RNDU);
  settle(r, sum, m, ternary);
}

void Enclosure::scale(mpfr_ptr r, double c, mpfr_srcptr ra, mpfr_srcptr m, int ternary) {
  mpfr_mul_d(r, ra, c < 0 ? -c : c, MPFR_RNDU);
  unbounded_if_nan(r);
  add_rounding(r, m, ternary);
}

void Enclosure::div(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr b, mpfr_srcptr rb, mpfr_srcptr m,
                    int ternary) {
  mpfr_ptr low = s_[0], t = s_[1], num = s_[2];
  abs_down(low, b);
  mpfr_sub(low, low, rb, MPFR_RNDD);  // |B| >= |b| - rb
  if (!(mpfr_sgn(low) > 0)) {
    mpfr_set_inf(r, 1);
    return;
  }
  abs_up(t, a);
  abs_down(num, b);
  mpfr_div(t, t, num, MPFR_RNDU);  // |a/b|
  mpfr_mul(t, t, rb, MPFR_RNDU);
  mpfr_add(num, ra, t, MPFR_RNDU);
  mpfr_div(num, num, low, MPFR_RNDU);
  settle(r, num, m, ternary);
}

void Enclosure::sqrt(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr m, int ternary) {
  mpfr_ptr low = s_[0], t = s_[1];
  mpfr_set(low, a, MPFR_RNDD);
  mpfr_sub(t, low, ra, MPFR_RNDD);
  if (!(mpfr_sgn(low) > 0) || mpfr_sgn(t) < 0 || mpfr_nan_p(t)) {
    mpfr_set_inf(r, 1);
    return;
  }
  mpfr_sqrt(low, low, MPFR_RNDD);
  mpfr_div(t, ra, low, MPFR_RNDU);
  settle(r, t, m, ternary);
}

void Enclosure::exp(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr m, int ternary) {
  mpfr_ptr t = s_[0], u = s_[1];
  if (mpfr_cmp_ui(ra, 1) <= 0 && mpfr_number_p(m)) {
    // exp(a + ra) = exp(a) exp(ra) with exp(a) <= |m| + (m's rounding term) and
    // exp(ra) <= 1 + 2 ra for 0 <= ra <= 1 (e^x <= 1 + 2x on [0, 1.25]): no exponential
    // at all, where the bound below computes one per value.
    abs_up(t, m);
    add_rounding(t, m, ternary);
    mpfr_mul_2ui(u, ra, 1, MPFR_RNDU);
    mpfr_add_ui(u, u, 1, MPFR_RNDU);
    mpfr_mul(t, t, u, MPFR_RNDU);
  } else {
    mpfr_set(t, a, MPFR_RNDU);
    mpfr_add(t, t, ra, MPFR_RNDU);
    mpfr_exp(t, t, MPFR_RNDU);
  }
  mpfr_mul(t, t, ra, MPFR_RNDU);
  settle(r, t, m, ternary);
}

void Enclosure::lipschitz1(mpfr_ptr r, mpfr_srcptr ra, mpfr_srcptr m, int ternary) {
  mpfr_set(r, ra, MPFR_RNDU);
  add_rounding(r, m, ternary);
}

void Enclosure::pow_of_exact(mpfr_ptr r, mpfr_srcptr c, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr m, int ternary) {
  mpfr_ptr lo = s_[0], hi = s_[1], log_c = s_[2];
  if (!(mpfr_sgn(c) > 0)) {
    mpfr_set_inf(r, 1);
    return;
  }
  // The larger end of c^x over [a - ra, a + ra] is at one of the ends: take both, rounded up.
  mpfr_set(lo, a, MPFR_RNDD);
  mpfr_sub(lo, lo, ra, MPFR_RNDD);
  mpfr_set(hi, a, MPFR_RNDU);
  mpfr_add(hi, hi, ra, MPFR_RNDU);
  // c^x is increasing for c >= 1, decreasing below: raise the end that gives the larger value.
  mpfr_ptr end = mpfr_cmp_ui(c, 1) >= 0 ? hi : lo;
  mpfr_pow(end, c, end, MPFR_RNDU);
  if (mpfr_cmp_ui(c, 1) >= 0) {
    mpfr_log(log_c, c, MPFR_RNDU);  // |ln c| rounded up
  } else {
    mpfr_log(log_c, c, MPFR_RNDD);  // ln c < 0: its magnitude rounded up
    mpfr_neg(log_c, log_c, MPFR_RNDU);
  }
  mpfr_mul(end, end, log_c, MPFR_RNDU);
  mpfr_mul(end, end, ra, MPFR_RNDU);
  settle(r, end, m, ternary);
}

bool ball_rounds_correctly(mpfr_srcptr m, mpfr_srcptr r) {
  if (!mpfr_number_p(r) || !mpfr_number_p(m)) return false;
  if (mpfr_zero_p(r)) return true;
  if (mpfr_zero_p(m)) return false;
  // r <= 2^EXP(r) = 2^(EXP(m) - err): the error bound mpfr_can_round takes.
  return rounds_correctly(m, long(mpfr_get_exp(m)) - long(mpfr_get_exp(r)));
}

double radius_in_half_ulps(mpfr_srcptr m, mpfr_srcptr r) {
  if (mpfr_zero_p(r)) return 0;
  if (!mpfr_number_p(r)) return INFINITY;
  // float64's grid at m: spacing 2^(EXP(m) - 53) for normal m, 2^-1074 below 2^-1022.
  const long exp_m = mpfr_zero_p(m) ? -1021 : std::max<long>(mpfr_get_exp(m), -1021);
  long e = 0;
  const double d = mpfr_get_d_2exp(&e, r, MPFR_RNDU);  // r <= d 2^e, d <= 1
  const double ratio = std::ldexp(d, int(std::clamp<long>(e - (exp_m - 54), -2000, 2000)));  // r / 2^(exp_m - 54)
  // ldexp is exact unless it leaves the normal range: keep an upper bound there too.
  return ratio < 0x1p-1022 ? 0x1p-1022 : ratio;
}

}  // namespace kvfid::ref
