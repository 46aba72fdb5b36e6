#pragma once
// The forward's arithmetic on balls: each operation computes its midpoint exactly as
// MpArith does (same call, same rounding, same bits) and, when the result's radius is
// tracked, the radius by enclosure.h's rule for that operation. With radii untracked
// (the IEEE emulation, or a forward run without enclosures) it is MpArith alone.
#include <stdexcept>
#include <string>

#include <mpfr.h>

#include "reference/mp/enclosure.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// A result: its midpoint and, when tracked, its radius (r null: not tracked).
struct Ball {
  mpfr_ptr m;
  mpfr_ptr r = nullptr;
};
// An operand: its midpoint and radius (r null: exact).
struct CBall {
  mpfr_srcptr m;
  mpfr_srcptr r = nullptr;
};

// Element i of values m and optional radii r (null: untracked / exact).
inline Ball ball_at(MpArray& m, MpArray* r, std::size_t i) { return {m[i], r ? (*r)[i] : nullptr}; }
inline CBall cball_at(const MpArray& m, const MpArray* r, std::size_t i) { return {m[i], r ? (*r)[i] : nullptr}; }
inline CBall cball(Ball b) { return {b.m, b.r}; }

// One per thread (scratch). A result may alias an operand.
class BallArith {
 public:
  explicit BallArith(const MpArith& arith) : a_(arith), zero_(exact_radii(1)), mid_(1, arith.precision()) {}

  const MpArith& arith() const { return a_; }

  void add(Ball o, CBall x, CBall y) {
    const int t = a_.add(o.m, x.m, y.m);
    if (o.r) enc_.add(o.r, rad(x), rad(y), o.m, t);
  }
  void sub(Ball o, CBall x, CBall y) {
    const int t = a_.sub(o.m, x.m, y.m);
    if (o.r) enc_.add(o.r, rad(x), rad(y), o.m, t);
  }
  void mul(Ball o, CBall x, CBall y) {
    if (!o.r) return void(a_.mul(o.m, x.m, y.m));
    const int t = a_.mul(mid_[0], x.m, y.m);
    enc_.mul(o.r, x.m, rad(x), y.m, rad(y), mid_[0], t);
    mpfr_set(o.m, mid_[0], MPFR_RNDN);  // exact: same precision
  }
  void div(Ball o, CBall x, CBall y) {
    if (!o.r) return void(a_.div(o.m, x.m, y.m));
    const int t = a_.div(mid_[0], x.m, y.m);
    enc_.div(o.r, x.m, rad(x), y.m, rad(y), mid_[0], t);
    mpfr_set(o.m, mid_[0], MPFR_RNDN);
  }
  void sqrt(Ball o, CBall x) {
    if (!o.r) return void(a_.sqrt(o.m, x.m));
    const int t = a_.sqrt(mid_[0], x.m);
    enc_.sqrt(o.r, x.m, rad(x), mid_[0], t);
    mpfr_set(o.m, mid_[0], MPFR_RNDN);
  }
  void exp(Ball o, CBall x) {
    if (!o.r) return void(a_.exp(o.m, x.m));
    const int t = a_.exp(mid_[0], x.m);
    enc_.exp(o.r, x.m, rad(x), mid_[0], t);
    mpfr_set(o.m, mid_[0], MPFR_RNDN);
  }
  void sin(Ball o, CBall x) {
    const int t = a_.sin(o.m, x.m);
    if (o.r) enc_.lipschitz1(o.r, rad(x), o.m, t);
  }
  void cos(Ball o, CBall x) {
    const int t = a_.cos(o.m, x.m);
    if (o.r) enc_.lipschitz1(o.r, rad(x), o.m, t);
  }
  void tanh(Ball o, CBall x) {
    const int t = a_.tanh(o.m, x.m);
    if (o.r) enc_.lipschitz1(o.r, rad(x), o.m, t);
  }
  // o = cap * tanh(x / cap), soft-capping (Gemma 2) for an exact cap > 0: a division,
  // tanh and a product, each rounded once, in the engines' order.
  void soft_cap(Ball o, CBall x, mpfr_srcptr cap) {
    div(o, x, {cap});
    tanh(o, cball(o));
    mul(o, cball(o), {cap});
  }
  // o = the decimal constant `digits`, rounded as MpArith rounds its results.
  void decimal(Ball o, const char* digits) {
    char* end = nullptr;
    const int t = a_.finish(o.m, mpfr_strtofr(o.m, digits, &end, 10, MPFR_RNDN));  // its ternary value
    if (end == digits || *end != '\0') throw std::logic_error(std::string("BallArith::decimal: not a number: ") + digits);
    if (o.r) {
      mpfr_set_zero(o.r, 1);
      enc_.add_rounding(o.r, o.m, t);
    }
  }
  // o = c^x for an exact c > 0.
  void pow_of_exact(Ball o, mpfr_srcptr c, CBall x) {
    if (!o.r) return void(a_.pow(o.m, c, x.m));
    const int t = a_.pow(mid_[0], c, x.m);
    enc_.pow_of_exact(o.r, c, x.m, rad(x), mid_[0], t);
    mpfr_set(o.m, mid_[0], MPFR_RNDN);
  }
  // o = x * k for an exact integer k (MPFR's mul_si, rounded into the format).
  void mul_si(Ball o, CBall x, long k) {
    const int t = a_.finish(o.m, mpfr_mul_si(o.m, x.m, k, MPFR_RNDN));
    if (o.r) enc_.scale(o.r, double(k), rad(x), o.m, t);
  }

  // o = pi, rounded as MpArith rounds its results.
  void pi(Ball o) {
    const int t = a_.finish(o.m, mpfr_const_pi(o.m, MPFR_RNDN));
    if (o.r) {
      mpfr_set_zero(o.r, 1);
      enc_.add_rounding(o.r, o.m, t);
    }
  }
  // o = clamp(x, 0, 1), exact on the midpoint. Clamping is 1-Lipschitz, so the radius
  // carries over; a ball wholly beyond a bound (m + r <= 0, m - r >= 1, the ends rounded
  // outward) becomes exact.
  void clamp01(Ball o, CBall x) {
    const int side = mpfr_sgn(x.m) < 0 ? -1 : mpfr_cmp_ui(x.m, 1) > 0 ? 1 : 0;
    if (o.r) {
      bool whole = false;
      if (side < 0) {
        mpfr_add(mid_[0], x.m, rad(x), MPFR_RNDU);
        whole = mpfr_sgn(mid_[0]) <= 0;
      } else if (side > 0) {
        mpfr_sub(mid_[0], x.m, rad(x), MPFR_RNDD);
        whole = mpfr_cmp_ui(mid_[0], 1) >= 0;
      }
      if (whole) mpfr_set_zero(o.r, 1);
      else mpfr_set(o.r, rad(x), MPFR_RNDU);
    }
    if (side < 0) mpfr_set_zero(o.m, 1);
    else if (side > 0) mpfr_set_ui(o.m, 1, MPFR_RNDN);
    else mpfr_set(o.m, x.m, MPFR_RNDN);
  }

  Enclosure& enclosure() { return enc_; }

 private:
  mpfr_srcptr rad(CBall x) const { return x.r ? x.r : zero_[0]; }

  const MpArith& a_;
  Enclosure enc_;
  MpArray zero_;  // [1] the radius of exact operands
  MpArray mid_;   // [1] a result's midpoint while its operands are still needed
};

}  // namespace kvfid::ref
