#pragma once
// Ball arithmetic for the golden's certification: every value the exact forward computes
// is a midpoint m (MPFR at the working precision P, computed exactly as it always was)
// and a radius r, such that the true value -- the same formula applied to the true inputs
// in real arithmetic -- lies in [m - r, m + r]. Weights, embeddings and constants are
// exact (radius 0); so are cached K and V under a KV policy, once each stored value is
// proven (kv_store.h).
//
// Radii are MPFR numbers of kRadiusBits, every radius operation rounded up (MPFR_RNDU),
// so each computed radius is at least the bound its rule states; MPFR's exponent range
// (an ExponentRangeScope) means a radius never underflows to zero or overflows. Each rule
// splits the error of a result m = RN_P(f(x)) as
//   |f(X) - m| <= |f(X) - f(x)|  +  |f(x) - m|
//                 propagation      rounding
// The rounding term is 0 when MPFR's ternary value says m is exact, else half an ulp at
// m's precision, 2^(EXP(m) - prec(m) - 1) (round to nearest; at a binade boundary the
// exact value's own half ulp is the smaller one). The propagation terms, for inputs
// with |A - a| <= ra, |B - b| <= rb:
//   A +- B        ra + rb
//   A * B         |a| rb + |b| ra + ra rb             (AB - ab = a(B-b) + b(A-a) + (A-a)(B-b))
//   c * A         |c| ra                               (c exact)
//   A / B         (ra + |a/b| rb) / (|b| - rb)         (A/B - a/b = ((A-a) b - a (B-b)) / (B b)
//                                                       and |B| >= |b| - rb > 0; else unbounded)
//   sqrt(A)       ra / sqrt(a)                         (|A - a| / (sqrt A + sqrt a), A >= 0;
//                                                       unbounded unless a - ra >= 0, a > 0)
//   exp(A)        exp(a + ra) ra                       (mean value theorem, exp increasing;
//                                                       for ra <= 1 bounded by (|m| + its
//                                                       rounding term)(1 + 2 ra) ra)
//   sin, cos(A)   ra                                   (|derivative| <= 1)
//   tanh(A)       ra                                   (tanh' = 1 - tanh^2 in (0, 1])
//   decimal d     0, plus the rounding of d itself      (a constant read from its digits)
//   c^A           max(c^(a - ra), c^(a + ra)) |ln c| ra (c > 0 exact; mean value theorem,
//                                                       c^x monotone)
// Dot products (scaled_bounds.h) add the sum over terms of the product rule.
// Softmax (softmax.cpp) is bounded as a whole row, not op by op: with p = softmax(x) of
// the midpoints, P = softmax(X) of the true inputs and p~ the computed row (shift by the
// largest x, exp, in-order sum, divide, each rounded to nearest at P bits),
//   |P_j - p~_j| <= p^_j ( e^(2R) J_j + rho_j ),   J_j = (1 - p_j) r_j + sum_{k!=j} p_k r_k
// where R = max_k r_k and p^_j >= p_j. Propagation: with u_k = e^(X_k - x_k),
//   P_j - p_j = p_j ((1 - p_j)(u_j - 1) - sum_{k!=j} p_k (u_k - 1)) / sum_k p_k u_k,
// |u_k - 1| <= r_k e^R and sum_k p_k u_k >= e^-R: the first-order (Jacobian) bound,
// rigorous through its e^(2R), and zero for a lone key. It charges a uniform row 2 p (1 - p) r
// where the op-by-op rules charged about 4 p r. Rounding: each E~_k = RN(exp(RN(x_k - max)))
// is e_k (1 + eta_k), |eta_k| <= H = e^a (1 + u) - 1 (a: a half ulp of the widest rounded
// difference, u = 2^-P), the sum's relative error is at most gamma_{n-1} (positive terms,
// Higham Lemma 3.1), the division's u (or 0 when exact), so p~_j / p_j differs from 1 by
// at most rho_j = (2H + gamma + e_j + H max(e_j, gamma)) / ((1 - H)(1 - gamma)).
// An unbounded radius is +Inf; a radius that is not a finite number never certifies.
#include <cstdint>
#include <stdexcept>
#include <string>

#include <mpfr.h>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {

// Radii need only their exponent and a few bits: they are compared with the float64
// rounding interval, which they must stay far below (Arb's mag_t keeps 30 bits).
inline constexpr mpfr_prec_t kRadiusBits = 32;

// n radii of exact values (+0).
inline MpArray exact_radii(std::size_t n) { return MpArray(n, kRadiusBits); }

// A step that is not continuous -- rounding a value into a storage format (kv_store.h) --
// met a ball whose ends round to different results: nothing after it can be enclosed at
// this precision, so the golden's attempt fails there and the precision grows.
class UndecidedRounding : public std::runtime_error {
 public:
  UndecidedRounding(std::string tap, std::int64_t index)
      : std::runtime_error("tap '" + tap + "' index " + std::to_string(index) +
                           ": the enclosure straddles a rounding boundary of its storage format"),
        tap_(std::move(tap)), index_(index) {}
  const std::string& tap() const { return tap_; }
  std::int64_t index() const { return index_; }

 private:
  std::string tap_;
  std::int64_t index_;
};

// The rules above. Each writes the result's radius into r, which may alias an input
// radius. Holds scratch: one object per thread.
class Enclosure {
 public:
  Enclosure();

  // r += the rounding term of m (ternary: MPFR's ternary value for m).
  void add_rounding(mpfr_ptr r, mpfr_srcptr m, int ternary);

  void add(mpfr_ptr r, mpfr_srcptr ra, mpfr_srcptr rb, mpfr_srcptr m, int ternary);  // also subtraction
  void mul(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr b, mpfr_srcptr rb, mpfr_srcptr m, int ternary);
  void scale(mpfr_ptr r, double c, mpfr_srcptr ra, mpfr_srcptr m, int ternary);  // m = RN(c A), c exact
  void div(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr b, mpfr_srcptr rb, mpfr_srcptr m, int ternary);
  void sqrt(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr m, int ternary);
  void exp(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr m, int ternary);
  void lipschitz1(mpfr_ptr r, mpfr_srcptr ra, mpfr_srcptr m, int ternary);  // sin, cos, tanh
  void pow_of_exact(mpfr_ptr r, mpfr_srcptr c, mpfr_srcptr a, mpfr_srcptr ra, mpfr_srcptr m, int ternary);

 private:
  // r = the propagation term (scratch; NaN, from 0 * Inf, taken as unbounded) + m's rounding term.
  void settle(mpfr_ptr r, mpfr_ptr propagated, mpfr_srcptr m, int ternary);

  MpArray s_;  // [4] scratch at kRadiusBits
};

// Whether the whole ball [m - r, m + r] rounds to nearest float64 to the value m rounds
// to (certify.h's test with the radius as its error bound). Exact values (r = 0) always
// pass; a zero midpoint with a nonzero radius never does (the sign of the zero it would
// round to is unknown); nor does a radius that is not a finite number.
bool ball_rounds_correctly(mpfr_srcptr m, mpfr_srcptr r);

// The radius in units of the float64 rounding interval's half width at m, rounded up
// (the manifest's measure of how tight the certification is; 0 for exact values).
double radius_in_half_ulps(mpfr_srcptr m, mpfr_srcptr r);

}  // namespace kvfid::ref
