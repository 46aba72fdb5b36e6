#include "reference/mp/softmax.h"

#include <algorithm>
#include <vector>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {

namespace {

// What the midpoint pass leaves for the rounding bound (enclosure.h's softmax rule).
struct Roundings {
  bool shift_inexact = false;  // some x_j - max rounded
  mpfr_exp_t shift_exp = 0;    // the largest EXP among those rounded differences
  bool exp_inexact = false;    // some exponential rounded
  bool sum_inexact = false;    // some partial sum rounded
};

// radii[j] := the radius of p~_j = p[j] by enclosure.h's softmax rule, from the inputs'
// radii (replaced) and the midpoint pass's roundings at precision P (div_inexact[j]:
// p~_j's division).
// Every step at kRadiusBits, rounded up where it bounds from above and down where it
// bounds from below.
void softmax_radii(mpfr_srcptr p, int n, mpfr_prec_t P, mpfr_ptr radii, const Roundings& rounded,
                   const std::vector<char>& div_inexact) {
  // One allocation: 8 scalars, then [n] each of hat and weighted, [n + 1] each of the
  // prefix and suffix sums of both.
  const std::size_t m = std::size_t(n);
  MpArray s(8 + 2 * m + 4 * (m + 1), kRadiusBits);
  mpfr_ptr u = s[0], H = s[1], gamma = s[2], G = s[3], low = s[4], t = s[5];
  mpfr_ptr rho[2] = {s[6], s[7]};  // the relative rounding bound, division exact / rounded
  mpfr_ptr hat = s[8], weighted = hat + m;                        // [n] p^_k, p^_k r_k
  mpfr_ptr before = weighted + m, after = before + m + 1;         // [n + 1] sums of hat over k < j, k >= j
  mpfr_ptr before_w = after + m + 1, after_w = before_w + m + 1;  // [n + 1] the same of weighted
  mpfr_set_ui_2exp(u, 1, -P, MPFR_RNDU);  // u = 2^-P
  // H >= |E~_k / e_k - 1|: E~_k = RN(exp(d~_k)), |d~_k - (x_k - max)| <= a = a half ulp of
  // the widest rounded difference, so E~_k / e_k lies in [e^-a (1 - u), e^a (1 + u)] and
  // e^a (1 + u) - 1 = expm1(a)(1 + u) + u.
  mpfr_set_zero(H, 1);
  if (rounded.shift_inexact) {
    mpfr_set_ui_2exp(t, 1, rounded.shift_exp - P - 1, MPFR_RNDU);
    mpfr_expm1(H, t, MPFR_RNDU);
    mpfr_add_ui(t, u, 1, MPFR_RNDU);
    mpfr_mul(H, H, t, MPFR_RNDU);
  }
  if (rounded.exp_inexact || rounded.shift_inexact) mpfr_add(H, H, u, MPFR_RNDU);
  // gamma_{n-1} = (n - 1) u / (1 - (n - 1) u): the relative error of an in-order sum of
  // n positive terms (Higham, Accuracy and Stability, 2nd ed., Lemma 3.1 and (4.4)).
  mpfr_set_zero(gamma, 1);
  if (rounded.sum_inexact) {
    mpfr_mul_ui(gamma, u, (unsigned long)(n - 1), MPFR_RNDU);
    mpfr_ui_sub(t, 1, gamma, MPFR_RNDD);
    if (mpfr_sgn(t) <= 0) mpfr_set_inf(gamma, 1);
    else mpfr_div(gamma, gamma, t, MPFR_RNDU);
  }
  // p~_j / p_j lies in [(1-H)(1-e)/((1+H)(1+gamma)), (1+H)(1+e)/((1-H)(1-gamma))], e = u
  // when p~_j's division rounded, else 0; both ends differ from 1 by at most
  // rho = (2H + gamma + e + H max(e, gamma)) / ((1 - H)(1 - gamma)), and p_j <= p~_j / low
  // with low = 1 - rho.
  mpfr_ui_sub(low, 1, H, MPFR_RNDD);
  mpfr_ui_sub(t, 1, gamma, MPFR_RNDD);
  mpfr_mul(low, low, t, MPFR_RNDD);  // (1 - H)(1 - gamma)
  for (int e = 0; e < 2; ++e) {
    mpfr_ptr r = rho[e];
    mpfr_max(t, gamma, u, MPFR_RNDU);
    if (e == 0) mpfr_set(t, gamma, MPFR_RNDU);
    mpfr_mul(r, H, t, MPFR_RNDU);
    mpfr_add(r, r, gamma, MPFR_RNDU);
    mpfr_add(r, r, H, MPFR_RNDU);
    mpfr_add(r, r, H, MPFR_RNDU);
    if (e == 1) mpfr_add(r, r, u, MPFR_RNDU);
    if (mpfr_sgn(low) <= 0) mpfr_set_inf(r, 1);
    else mpfr_div(r, r, low, MPFR_RNDU);
  }
  // p^_k >= p_k, and the exclusive sums over k != j of p^_k and p^_k r_k, from prefix and
  // suffix sums of nonnegative terms (no cancellation).
  mpfr_set_zero(G, 1);  // R = the largest input radius
  for (int k = 0; k < n; ++k) {
    mpfr_ptr r = rho[div_inexact[std::size_t(k)] ? 1 : 0];
    mpfr_ui_sub(t, 1, r, MPFR_RNDD);
    if (mpfr_sgn(t) <= 0) mpfr_set_inf(hat + k, 1);
    else mpfr_div(hat + k, p + k, t, MPFR_RNDU);
    mpfr_mul(weighted + k, hat + k, radii + k, MPFR_RNDU);
    if (mpfr_nan_p(weighted + k)) mpfr_set_inf(weighted + k, 1);  // 0 * Inf: p~_k is never 0 but a radius may be Inf
    mpfr_max(G, G, radii + k, MPFR_RNDU);
    mpfr_add(before + k + 1, before + k, hat + k, MPFR_RNDU);
    mpfr_add(before_w + k + 1, before_w + k, weighted + k, MPFR_RNDU);
  }
  for (int k = n - 1; k >= 0; --k) {
    mpfr_add(after + k, after + k + 1, hat + k, MPFR_RNDU);
    mpfr_add(after_w + k, after_w + k + 1, weighted + k, MPFR_RNDU);
  }
  mpfr_mul_2ui(G, G, 1, MPFR_RNDU);
  mpfr_exp(G, G, MPFR_RNDU);  // e^(2R)
  for (int j = 0; j < n; ++j) {
    // J_j = (1 - p_j) r_j + sum_{k != j} p_k r_k, with 1 - p_j = sum_{k != j} p_k.
    mpfr_ptr r = radii + j;
    mpfr_add(t, before + j, after + j + 1, MPFR_RNDU);
    mpfr_mul(t, t, r, MPFR_RNDU);
    if (mpfr_nan_p(t)) mpfr_set_inf(t, 1);
    mpfr_add(t, t, before_w + j, MPFR_RNDU);
    mpfr_add(t, t, after_w + j + 1, MPFR_RNDU);
    if (!mpfr_zero_p(t)) mpfr_mul(t, t, G, MPFR_RNDU);  // J_j = 0 only for a lone key: P_j = 1 exactly
    mpfr_add(t, t, rho[div_inexact[std::size_t(j)] ? 1 : 0], MPFR_RNDU);
    mpfr_mul(r, hat + j, t, MPFR_RNDU);
    if (mpfr_nan_p(r)) mpfr_set_inf(r, 1);
  }
}

}  // namespace

void softmax_in_place(mpfr_ptr x, int n, BallArith& ball, mpfr_ptr scratch, mpfr_ptr radii) {
  const MpArith& arith = ball.arith();
  mpfr_ptr max = scratch, sum = scratch + 1;
  int largest = 0;
  for (int j = 1; j < n; ++j)
    if (mpfr_greater_p(x + j, x + largest)) largest = j;
  mpfr_set(max, x + largest, MPFR_RNDN);  // exact: same precision
  mpfr_set_zero(sum, 1);
  Roundings rounded;
  for (int j = 0; j < n; ++j) {
    if (arith.sub(x + j, x + j, max) != 0) {
      rounded.shift_exp = rounded.shift_inexact ? std::max(rounded.shift_exp, mpfr_get_exp(x + j)) : mpfr_get_exp(x + j);
      rounded.shift_inexact = true;
    }
    rounded.exp_inexact |= arith.exp(x + j, x + j) != 0;
    rounded.sum_inexact |= arith.add(sum, sum, x + j) != 0;
  }
  std::vector<char> div_inexact(radii ? std::size_t(n) : 0);
  for (int j = 0; j < n; ++j) {
    const int t = arith.div(x + j, x + j, sum);
    if (radii) div_inexact[std::size_t(j)] = t != 0;
  }
  // The unit roundoff of every rounding above: the narrower of the two precisions.
  if (radii) softmax_radii(x, n, std::min(mpfr_get_prec(x), mpfr_get_prec(sum)), radii, rounded, div_inexact);
}

}  // namespace kvfid::ref
