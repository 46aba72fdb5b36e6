#pragma once
// An a-priori bound, per tap element, on |forward_f64 value - exact value|, where
// "exact" is the forward pass in real arithmetic on the stored weights (what the MPFR
// golden rounds to float64).
//
// Model of the arithmetic (assumptions):
//  * IEEE binary64, round to nearest, no FMA contraction (-ffp-contract=off): every
//    +, -, *, /, sqrt returns op(a, b)(1 + d) with |d| <= u = 2^-53.
//  * glibc exp, pow, sin, cos, tanh are not correctly rounded; glibc aims for "a few ulp"
//    and its table of known maximum errors lists at most a couple of ulp for these in
//    binary64 on x86_64. We assume kLibmUlps ulps of the correctly rounded result,
//    i.e. a relative error of at most 2 kLibmUlps u.
//  * No overflow; underflow only adds absolute errors of 2^-1075 per operation, far
//    below kUnderflowFloor (added to every bound) for weights of ordinary size.
//  * Dot products of length n, summed in any order (Eigen's kernels block and
//    vectorize): |fl(x.y) - x.y| <= gamma_n sum |x_i y_i|, gamma_n = n u / (1 - n u)
//    (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., 3.1).
//
// Propagation. Alongside the computed values v^ (taken from the float64 trace) we carry
// E(v) >= |v^ - v| per element. Exact magnitudes are bounded by |v| <= |v^| + E(v).
//  * Projection y = W x (+ b), W and b exact:
//      E(y) = gamma_{n(+1)} (|W| |x^| (+ |b|)) + |W| E(x).
//  * Residual x' = x + y: E(x') = E(x) + E(y) + u/(1-u) |x'^|.
//  * RMSNorm y_i = g_i x_i r(x), r(x) = (|x|^2/n + eps)^(-1/2). Input part: by the mean
//    value theorem on grad r = -r^3 x / n, |r(x^) - r(x)| <= r_max^3 N_hi / n |E(x)|_2
//    with N_hi = |x^|_2 + |E(x)|_2 and r_max = r at N_lo = max(0, |x^|_2 - |E(x)|_2); then
//    |g_i| (E_i r_max + |x^_i| |dr|). Rounding part: the sum of squares, / n, + eps,
//    sqrt, reciprocal, * x_i, * g_i compose to a relative gamma_{n+6}.
//  * RoPE angle phi = t theta^(-2i/d), d = rope_head_dim() (head_dim, or latent
//    attention's rope_dim): the exponent 2i/d (rounded unless exact, which
//    an FMA residual detects) moves theta^(-e) by a relative expm1(e u ln theta); pow
//    and * t add the libm and one rounding. Llama 3 scaling (rope_scaling.h) adds its
//    steps' roundings and, through the clamp's band s, (1 - 1/factor) E(s) relative
//    (rope_frequency_rel; the derivation is at scaled_frequency_rel). cos/sin then err by the libm relative error
//    plus E(phi) times a bound on |sin|/|cos| over the interval. The rotation
//    (a c - b s, a s + b c) propagates E(a), E(b), E(c), E(s) to first and second order
//    and rounds with gamma_2 (|a^ c^| + |b^ s^|). Entries RoPE does not rotate (latent
//    attention's first nope_dim of a head) keep their error.
//  * Latent attention (DeepSeek-V2): the projection and RMSNorm rules step by step, in
//    reference/mp/latent_attention.cpp's order (wq_a, its norm, wq; wkv_a, the latent's
//    norm, wkv_b); splitting kv_a and wkv_b's output into the latent, k_pe, nope keys and
//    values copies values exactly, errors with them.
//  * Qwen3's q/k norms: the RMSNorm rule above on each head's head_dim values.
//  * Gemma 2's gains 1 + w are rounded once: |g^ - g| <= u/(1-u) |g^|, which adds
//    E(g_i) (|x^_i| + E_i) r_max to the RMSNorm rule; its post-norms are that rule on
//    the block's output with its propagated error (f64_error_bound.cpp, gain_of).
//  * Embedding scale (Gemma 2): x = e * s, s an exact float64: E(x) = u/(1-u) |x^|.
//  * Scores s = q.k / sqrt(d), d = score_scale_dim() (head_dim, or Gemma's
//    query_pre_attn_scalar; the dot product still has head_dim terms, and sqrt(d) is
//    rounded once): gamma_{hd+2} sum |q^ k^| / sqrt(d) + sum (|q^| E(k) + E(q) |k^| +
//    E(q) E(k)) / sqrt(d).
//  * Soft-cap z' = cap tanh(z / cap) (Gemma 2's scores and logits): 1-Lipschitz, sharper
//    sech^2 at the smallest |z/cap| within the error; plus the division, tanh (libm) and
//    the product by cap (soft_cap_bound).
//  * GeGLU (gelu_tanh): kGeluTanhLipschitz E(z) plus the roundings of its nine steps, the
//    tanh's errors carried absolutely because 1 + tanh cancels for large negative z
//    (gelu_tanh_bound).
//  * Softmax: it is shift invariant, so the exact p uses the same computed max m^.
//    E(s_j - m^) = E(s_j) + u |d^_j|; exp then errs by a relative
//    rho_j = expm1(E(d_j)) + libm e^E(d_j); the sum by A = gamma_{n-1} sum e^ +
//    sum e^_j rho_j / (1 - rho_j); p_j by the relative r_j = (1+rho_j)(1+A/S^)(1+u) - 1.
//  * Attention output: a dot product of length t+1 with both factors inexact (values
//    v_head_dim wide).
//  * SwiGLU: silu is 1.0998-Lipschitz (max of |silu'|, at z ~ 2.4), so the input part is
//    kSiluLipschitz E(z); the rounding part is relative (1+u)/((1-libm)(1-u)) - 1 (exp,
//    1 + e, the division). The product act * up as for RoPE products.
// The bound is evaluated in float64 itself; its own rounding perturbs it by a relative
// O(n u) per step, covered by kEvaluationSlack.
//
// Against a golden that is the exact value correctly rounded to float64, allow the
// bound plus half an ulp of the golden (the tests' f64_allowance_against_golden, with
// the layer-local restart forward_f64_from: tests/reference/f64/f64_from_layer.h).
#include <vector>

#include "reference/f64/forward_trace.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid::ref {

inline constexpr double kUnitRoundoff = 0x1p-53;
// Assumed worst error of glibc exp, pow, sin, cos in binary64, in ulps (see above).
inline constexpr double kLibmUlps = 4.0;
// max_z |d/dz z/(1+e^-z)| = 1.0998 (at z ~ 2.3994), rounded up.
inline constexpr double kSiluLipschitz = 1.1;
// A Lipschitz constant of gelu_tanh(z) = 0.5 z (1 + tanh(C (z + A z^3))): |g'| < 1 + 1.5 *
// max_v v sech^2 v = 1 + 1.5 * 0.44774 = 1.672 (derivation at gelu_tanh_bound), rounded up.
inline constexpr double kGeluTanhLipschitz = 1.68;
// Covers the rounding of the bound's own float64 evaluation (relative O(n u) ~ 1e-12).
inline constexpr double kEvaluationSlack = 1.0 + 0x1p-20;
// Covers underflow's absolute errors (2^-1075 per operation, see above).
inline constexpr double kUnderflowFloor = 0x1p-900;

// Relative error bound of forward_trace's float64 RoPE frequency of `pair` (theta^(-2i/d),
// d = rope_head_dim(), Llama 3 scaled when the config says so) against the exact frequency.
double rope_frequency_rel(const ModelConfig& c, int pair);

// The rules of single elements, exposed for their own tests. E of cap * tanh(z / cap)
// computed as forward_trace does from z^ = z with E(z) = ez (cap > 0, exact).
double soft_cap_bound(double z, double ez, double cap);
// E of gelu_tanh_steps<double>(z).value from z^ = z with E(z) = ez.
double gelu_tanh_bound(double z, double ez);

// Bounds embed_tokens<double>'s error per element ([T, dim], zero when embed_scale is 1):
// the input error of f64_error_bounds for a forward from the token ids.
RowMatrix<double> embedding_error_bound(const ModelConfig& config, const RowMatrix<double>& embedded);

// Bounds for the taps of forward_f64(model, tokens, selection): same names and shapes.
TapSet f64_error_bound(const Model& model, const std::vector<int>& tokens, const TapSelection& selection);

// The same from a float64 trace (the bound is a function of the computed values), in
// trace_tap_specs order. residual_error ([T, dim], or empty for zero) bounds the error
// of the residual stream the trace started from.
std::vector<std::vector<double>> f64_error_bounds(const Model& model, const ForwardTrace<double>& trace,
                                                  const TapSelection& selection, const RowMatrix<double>& residual_error);

}  // namespace kvfid::ref
