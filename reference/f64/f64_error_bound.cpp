#include "reference/f64/f64_error_bound.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "reference/f64/weight_blocks.h"

namespace kvfid::ref {

namespace {

using Mat = RowMatrix<double>;

constexpr double u = kUnitRoundoff;

double gamma(double n) { return n * u / (1 - n * u); }

// Relative error of a libm result, measured against the computed result.
constexpr double kLibmRel = 2 * kLibmUlps * u / (1 - 2 * kLibmUlps * u);

// Relative rounding error of one operation, measured against its computed result.
constexpr double kOpRel = u / (1 - u);

// y = x W^T (+ b) with x^ = x, E(x) = ex; both [T, in].
Mat project_bound(const Mat& x, const Mat& ex, const Matrix& w, const std::vector<double>& bias) {
  const double g = gamma(double(w.cols) + (bias.empty() ? 0 : 1));
  Mat e(x.rows(), w.rows);  // [T, out]
  for_each_weight_block(w, [&](int first, const Mat& block) {
    const Mat w_abs = block.cwiseAbs();  // [rows in block, in]
    e.middleCols(first, block.rows()) = g * (x.cwiseAbs() * w_abs.transpose()) + ex * w_abs.transpose();
  });
  if (!bias.empty())
    for (Eigen::Index t = 0; t < e.rows(); ++t)
      for (Eigen::Index o = 0; o < e.cols(); ++o) e(t, o) += g * std::fabs(bias[o]);
  return e;
}

// x' = x + y computed as one rounded addition.
Mat residual_bound(const Mat& ex, const Mat& ey, const Mat& sum) { return ex + ey + kOpRel * sum.cwiseAbs(); }

// A norm's gain as forward_trace multiplies by it (norm_gain), and |g^ - g| per element.
struct Gain {
  std::vector<double> value;
  std::vector<double> error;  // empty: exact
};

// Gemma's gains 1 + w: the forward rounds the sum once, g^ = (1 + w)(1 + d) with |d| <= u,
// so |g^ - g| <= u |g| <= u/(1-u) |g^|. A stored w (every other family) is exact.
Gain gain_of(const ModelConfig& c, const std::vector<double>& w) {
  Gain g{norm_gain<double>(c, w), {}};
  if (c.norm_unit_offset)
    for (double v : g.value) g.error.push_back(kOpRel * std::fabs(v));
  return g;
}

// The rule in the header bounds |y^ - g^ x r(x)|, g^ being the gain the forward used. An
// inexact gain adds |g^ - g| |x_i| r(x) <= E(g_i) (|x^_i| + E_i) r_max, r_max >= r(x) on
// the ball around x^ (the same r_max as the input part).
Mat rms_norm_bound(const Mat& x, const Mat& ex, const Mat& y, const Gain& gain, double eps) {
  const double n = double(x.cols());
  const double g = gamma(n + 6);
  Mat e(x.rows(), x.cols());  // [T, dim]
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const double norm = x.row(t).norm(), err_norm = ex.row(t).norm();
    const double lo = std::max(0.0, norm - err_norm), hi = norm + err_norm;
    const double r_max = 1 / std::sqrt(lo * lo / n + eps);
    const double dr = r_max * r_max * r_max * hi / n * err_norm;
    for (Eigen::Index i = 0; i < x.cols(); ++i) {
      e(t, i) = std::fabs(gain.value[i]) * (ex(t, i) * r_max + std::fabs(x(t, i)) * dr) + g / (1 - g) * std::fabs(y(t, i));
      if (!gain.error.empty()) e(t, i) += gain.error[i] * (std::fabs(x(t, i)) + ex(t, i)) * r_max;
    }
  }
  return e;
}

// Qwen3's per-head RMSNorm (x, ex, y: [T, heads*head_dim]): rms_norm_bound on the rows
// of head_dim, each head its own vector.
Mat head_rms_norm_bound(const Mat& x, const Mat& ex, const Mat& y, const Gain& gain, double eps) {
  const Eigen::Index hd = Eigen::Index(gain.value.size()), rows = x.size() / hd;
  auto heads = [&](const Mat& m) -> Mat { return Eigen::Map<const Mat>(m.data(), rows, hd); };
  const Mat e = rms_norm_bound(heads(x), heads(ex), heads(y), gain, eps);
  return Eigen::Map<const Mat>(e.data(), x.rows(), x.cols());
}

struct RopeErrors {
  Mat cos, sin;  // [T, rope_head_dim/2]
};

// Relative error of forward_trace's float64 Llama 3 scaled frequency (rope_scaling.h's
// formula, each operation rounded once, pi rounded once) against the exact f'(f), given
// the computed f^ = f (1 + d), |d| <= rho_f. Step by step, with d^ = hi - lo rounded:
//   x = L f / (2 pi)   relative rho_x = (1 + rho_f)(1 + u)^2 / (1 - u) - 1
//   b = x - lo         |b^ - b| <= e_b = |x^| rho_x / (1 - rho_x) + u |b^|
//   s = b / (hi - lo)  |s^ - s| <= e_s = (e_b + 2u |b^|) / (|d^| (1 - u)) + u |s^|
//   clamp to [0, 1]    1-Lipschitz: e_s stays, or 0 when s^ +- e_s lies beyond one end
//   f' = f g(s), g(s) = (1 - s) / F + s in [1/F, 1], |g'| = 1 - 1/F:
//     |f^ g(s^) - f g(s)| <= |f^| (rho_f g(s^) + (1 - 1/F) e_s) / (1 - rho_f)
//   plus the roundings of 1 - s, (1 - s) f, / F, s f and the sum, each u |its result|,
//   carried into f' by f / F, 1 / F, 1, 1 and 1.
// The total E gives E / (|f'^| - E); the bound's own float64 arithmetic is covered by
// kEvaluationSlack (a few dozen roundings, each relative u).
double scaled_frequency_rel(const RopeScaling& r, double f, double rho_f) {
  const double two_pi = 2 * std::numbers::pi, d = r.high_freq_factor - r.low_freq_factor;
  const double x = double(r.original_max_positions) * f / two_pi, b = x - r.low_freq_factor, raw = b / d;
  const double sc = std::clamp(raw, 0.0, 1.0), F = r.factor;
  const double t1 = 1 - sc, t2 = t1 * f, t3 = t2 / F, t4 = sc * f, scaled = t3 + t4;
  const double rho_x = (1 + rho_f) * (1 + u) * (1 + u) / (1 - u) - 1;
  const double e_b = std::fabs(x) * rho_x / (1 - rho_x) + u * std::fabs(b);
  // A band wholly beyond an end clamps the true s to the same 0 or 1: no error there.
  const double e_raw = (e_b + 2 * u * std::fabs(b)) / (std::fabs(d) * (1 - u)) + u * std::fabs(raw);
  const double e_s = raw - e_raw >= 1 || raw + e_raw <= 0 ? 0 : e_raw;
  const double g = t1 / F + sc;
  const double propagated = std::fabs(f) * (rho_f * g + (1 - 1 / F) * e_s) / (1 - rho_f);
  const double rounding = u * (std::fabs(t1) * std::fabs(f) / F + std::fabs(t2) / F + std::fabs(t3) + std::fabs(t4) +
                               std::fabs(scaled));
  const double e = (propagated + rounding) * kEvaluationSlack;
  return e / (std::fabs(scaled) - e);
}

RopeErrors rope_table_bound(const ForwardTrace<double>& tr, const ModelConfig& c) {
  const Eigen::Index T = tr.angle.rows(), pairs = tr.angle.cols();
  RopeErrors r{Mat(T, pairs), Mat(T, pairs)};
  for (Eigen::Index i = 0; i < pairs; ++i) {
    const double rho = (1 + rope_frequency_rel(c, int(i))) * (1 + u) - 1;  // angle t f, relative
    for (Eigen::Index t = 0; t < T; ++t) {
      const double e_angle = std::fabs(tr.angle(t, i)) * rho / (1 - rho);
      const double cs = std::fabs(tr.cos(t, i)), sn = std::fabs(tr.sin(t, i));
      // |cos phi^ - cos phi| <= E(phi) max |sin| on the interval, and vice versa.
      r.cos(t, i) = kLibmRel * cs + e_angle * std::min(1.0, sn * (1 + kLibmRel) + e_angle);
      r.sin(t, i) = kLibmRel * sn + e_angle * std::min(1.0, cs * (1 + kLibmRel) + e_angle);
    }
  }
  return r;
}

// E of x after RoPE, from x before it (x_lin, ex_lin: [T, heads*head_dim]). The part
// RoPE leaves alone (latent attention's nope_dim first entries of a head) keeps its error.
Mat rope_bound(const Mat& x_lin, const Mat& ex_lin, const ForwardTrace<double>& tr, const RopeErrors& rt,
               const ModelConfig& c) {
  Mat e = ex_lin;  // [T, heads*head_dim]
  const int heads = int(x_lin.cols()) / c.head_dim;
  for (Eigen::Index t = 0; t < x_lin.rows(); ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < c.rope_head_dim() / 2; ++i) {
        const auto [pa, pb] = rope_pair(c, i);
        const int part = h * c.head_dim + c.nope_dim(), ia = part + pa, ib = part + pb;
        const double a = std::fabs(x_lin(t, ia)), b = std::fabs(x_lin(t, ib));
        const double ea = ex_lin(t, ia), eb = ex_lin(t, ib);
        const double cs = std::fabs(tr.cos(t, i)), sn = std::fabs(tr.sin(t, i));
        const double ec = rt.cos(t, i), es = rt.sin(t, i);
        // a c - b s and a s + b c: each product's error is |a| E(c) + E(a) |c^| etc.
        const double propagated_a = (a + ea) * ec + cs * ea + (b + eb) * es + sn * eb;
        const double propagated_b = (a + ea) * es + sn * ea + (b + eb) * ec + cs * eb;
        e(t, ia) = propagated_a + gamma(2) * (a * cs + b * sn);
        e(t, ib) = propagated_b + gamma(2) * (a * sn + b * cs);
      }
  return e;
}

}  // namespace

// E of z' = cap tanh(z / cap) (Gemma 2's soft-cap of scores and logits) from z^ and E(z),
// with the forward's steps q = z / cap, th = tanh(q), cap * th recomputed (same values).
// Input part: d/dz cap tanh(z / cap) = sech^2(z / cap) <= 1, so cap tanh(. / cap) is
// 1-Lipschitz; sharper, by the mean value theorem the argument's error e_q (below) passes
// through tanh times S = sech^2 at the smallest |q| within e_q of q^ (sech^2 falls with |q|).
// Rounding part: the division adds u/(1-u) |q^| to the argument, so
// e_q = E(z) / cap + u/(1-u) |q^|; glibc's tanh errs by kLibmRel |th^| (glibc's table of
// known errors lists 2 ulps for binary64 tanh on x86_64, inside kLibmUlps as for exp,
// sin and cos); the product by the exact cap rounds once, u/(1-u) |z'^|. Together
//   E(z') = cap (S e_q + kLibmRel |th^|) + u/(1-u) |z'^|.
// An overflowing cosh gives S = 0, where the true S < 4 e^-1400 lies below kUnderflowFloor.
double soft_cap_bound(double z, double ez, double cap) {
  const double q = z / cap, th = std::tanh(q), capped = cap * th;
  const double e_q = ez / cap + kOpRel * std::fabs(q);
  const double ch = std::cosh(std::max(0.0, std::fabs(q) - e_q));
  return cap * (e_q / (ch * ch) + kLibmRel * std::fabs(th)) + kOpRel * std::fabs(capped);
}

namespace {

Mat soft_cap_bounds(const Mat& z, const Mat& ez, double cap) {
  Mat e(z.rows(), z.cols());
  for (Eigen::Index i = 0; i < z.size(); ++i) e.data()[i] = soft_cap_bound(z.data()[i], ez.data()[i], cap);
  return e;
}

struct AttentionErrors {
  std::vector<Mat> probs;  // n_heads x [T, T]
  Mat out;                 // [T, n_heads*v_head_dim]
};

AttentionErrors attention_bound(const LayerTrace<double>& L, const Mat& eq, const Mat& ek, const Mat& ev,
                                const ModelConfig& c, int layer) {
  const int T = int(L.q.rows()), hd = c.head_dim, vd = c.v_head_dim();  // key and value head widths
  // The dot product has hd terms whatever d is: gamma_{hd+2} counts them, the rounding
  // of sqrt(d) (d exact) and the division, as in the header's score rule.
  const double inv_sqrt_d = 1 / std::sqrt(c.score_scale_dim());
  const bool capped = c.attn_softcap > 0;
  AttentionErrors r{std::vector<Mat>(c.n_heads, Mat::Zero(T, T)), Mat::Zero(T, c.attn_out_dim())};
  std::vector<double> e_score(T), e_exp(T), rho(T);
  for (int h = 0; h < c.n_heads; ++h) {
    const int q_off = h * hd, kv_off = c.kv_head_of(h) * hd, v_off = c.kv_head_of(h) * vd, out_off = h * vd;
    const Mat& s = L.scores[h];
    const Mat& p = L.probs[h];
    for (int t = 0; t < T; ++t) {
      const int first = c.first_key(layer, t), n = t - first + 1;  // the keys read: [first, t]
      for (int j = first; j <= t; ++j) {
        double abs_dot = 0, propagated = 0;
        for (int d = 0; d < hd; ++d) {
          const double q = std::fabs(L.q(t, q_off + d)), k = std::fabs(L.k(j, kv_off + d));
          const double e_q = eq(t, q_off + d), e_k = ek(j, kv_off + d);
          abs_dot += q * k;
          propagated += q * e_k + e_q * k + e_q * e_k;
        }
        e_score[j] = (gamma(hd + 2) * abs_dot + propagated) * inv_sqrt_d;
        if (capped) e_score[j] = soft_cap_bound(L.uncapped_scores[h](t, j), e_score[j], c.attn_softcap);
      }
      // Recompute the forward's shifted exponentials (same operations, same values).
      double max = s(t, first);
      for (int j = first + 1; j <= t; ++j) max = std::max(max, s(t, j));
      double sum = 0, sum_err = 0;
      for (int j = first; j <= t; ++j) {
        const double shifted = s(t, j) - max;
        const double e_shifted = e_score[j] + kOpRel * std::fabs(shifted);
        e_exp[j] = std::exp(shifted);
        rho[j] = std::expm1(e_shifted) + kLibmRel * std::exp(e_shifted);
        sum += e_exp[j];
        sum_err += e_exp[j] * rho[j] / (1 - rho[j]);
      }
      sum_err += gamma(n - 1) * sum / (1 - gamma(n - 1));
      const double sum_rel = sum_err / sum;
      for (int j = first; j <= t; ++j) {
        const double rel = (1 + rho[j]) * (1 + sum_rel) * (1 + u) - 1;
        r.probs[h](t, j) = rel * p(t, j) / (1 - rel);
      }
      for (int d = 0; d < vd; ++d) {
        double abs_dot = 0, propagated = 0;
        for (int j = first; j <= t; ++j) {
          const double pj = p(t, j), ep = r.probs[h](t, j);
          const double v = std::fabs(L.v(j, v_off + d)), e_v = ev(j, v_off + d);
          abs_dot += pj * v;
          propagated += pj * e_v + ep * v + ep * e_v;
        }
        r.out(t, out_off + d) = gamma(n) * abs_dot + propagated;
      }
    }
  }
  return r;
}

Mat silu_bound(const Mat& act, const Mat& e_gate) {
  const double rel = (1 + u) / ((1 - kLibmRel) * (1 - u)) - 1;
  return kSiluLipschitz * e_gate + rel / (1 - rel) * act.cwiseAbs();
}

}  // namespace

// E of act = gelu_tanh(z) (gelu_tanh_steps) from z^ = gate and E(z).
// Input part: g(x) = 0.5 x (1 + tanh v), v = C (x + A x^3), has
//   g'(x) = 0.5 (1 + tanh v) + 0.5 x sech^2(v) v'(x).
// The first term lies in [0, 1]. As x v'(x) = C x + 3 A C x^3 and |v| = C |x| + A C |x|^3,
// |x v'| <= 3 |v|, so the second term is at most 1.5 |v| sech^2(v) <= 1.5 max_v v sech^2 v
// = 1.5 * 0.44774 (at v = 0.77170, where 2 v tanh v = 1) < 0.672: |g'| < 1.672 <=
// kGeluTanhLipschitz, and the mean value theorem gives kGeluTanhLipschitz E(z).
// Rounding part, at the computed z^ (exact input from here on), with C^ = C (1 + d_C) and
// A^ = A (1 + d_A) the compiler's correctly rounded literals (|d| <= u):
//   A^ z^3 = A z^3 (1 + theta_4) (A rounded, z z, * z, * A: four factors 1 + d, Higham 3.3);
//   z + A z^3 has no cancellation (z and A z^3 share their sign), so the sum, rounded, is
//   (z + A z^3)(1 + theta_5), and the tanh argument v^ = C (z + A z^3)(1 + theta_7):
//   |v^ - v| <= gamma_7 |v| <= e_v = gamma_7 / (1 - gamma_7) |v^|.
//   th^ = tanh(v^) within kLibmRel |th^| (as in soft_cap_bound), and tanh(v^) within
//   S e_v of tanh(v), S = sech^2 at the smallest |v| within e_v of v^ (mean value theorem).
//   0.5 z is exact; 1 + th^ and the product round twice: |act^ - 0.5 z (1 + th^)| <=
//   gamma_2 / (1 - gamma_2) |act^|. 1 + th^ cancels where th^ ~ -1 (z large and negative),
//   so th^'s errors are carried as absolute ones, times 0.5 |z|, never relative to 1 + th^:
//   E(act) = kGeluTanhLipschitz E(z) + gamma_2/(1-gamma_2) |act^| + 0.5 |z^| (kLibmRel |th^| + S e_v).

double gelu_tanh_bound(double z, double ez) {
  const double rel_v = gamma(7) / (1 - gamma(7)), rel_out = gamma(2) / (1 - gamma(2));
  const GeluTanhSteps<double> st = gelu_tanh_steps(z);
  const double e_v = rel_v * std::fabs(st.arg);
  const double ch = std::cosh(std::max(0.0, std::fabs(st.arg) - e_v));
  const double rounding = rel_out * std::fabs(st.value) + 0.5 * std::fabs(z) * (kLibmRel * std::fabs(st.th) + e_v / (ch * ch));
  return kGeluTanhLipschitz * ez + rounding;
}

namespace {

Mat gelu_tanh_bounds(const Mat& gate, const Mat& e_gate) {
  Mat e(gate.rows(), gate.cols());
  for (Eigen::Index i = 0; i < gate.size(); ++i) e.data()[i] = gelu_tanh_bound(gate.data()[i], e_gate.data()[i]);
  return e;
}

Mat activation_bound(const LayerTrace<double>& L, const Mat& e_gate, Activation activation) {
  if (activation == Activation::silu) return silu_bound(L.act, e_gate);
  return gelu_tanh_bounds(L.gate, e_gate);
}

// a * b rounded once.
Mat product_bound(const Mat& a, const Mat& ea, const Mat& b, const Mat& eb, const Mat& prod) {
  return (a.cwiseAbs() + ea).cwiseProduct(eb) + ea.cwiseProduct(b.cwiseAbs()) + kOpRel * prod.cwiseAbs();
}

// E of q_lin, k_lin (before RoPE) and v: [T, q_dim], [T, kv_dim], [T, v_dim].
struct QkvErrors {
  Mat q, k, v;
};

// Latent attention's q_lin, k_lin and v (forward_trace's latent_qkv) from h^ = L.h with
// E(h) = eh: the projection and RMSNorm rules step by step; the copies that split kv_a
// and kv into the latent, k_pe, the nope keys and the values are exact and carry the
// errors of what they copy.
QkvErrors latent_qkv_bound(const LayerTrace<double>& L, const Mat& eh, const LayerWeights& w, const ModelConfig& c) {
  const LatentAttention& a = c.mla;
  const int H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), vd = a.v_head_dim, rd = a.rope_dim;
  QkvErrors r;
  if (a.q_lora_rank > 0) {
    const Mat e_qa = project_bound(L.h, eh, w.wq_a, {});  // [T, q_lora_rank]
    const Mat e_qc = rms_norm_bound(L.q_a, e_qa, L.q_c, gain_of(c, w.q_a_norm), c.rms_norm_eps);
    r.q = project_bound(L.q_c, e_qc, w.wq, {});
  } else {
    r.q = project_bound(L.h, eh, w.wq, {});
  }
  const Mat e_kva = project_bound(L.h, eh, w.wkv_a, {});  // [T, kv_lora_rank + rope_dim]
  const Mat e_latent = rms_norm_bound(L.kv_a.leftCols(a.kv_lora_rank), e_kva.leftCols(a.kv_lora_rank), L.latent,
                                      gain_of(c, w.kv_a_norm), c.rms_norm_eps);  // [T, kv_lora_rank]
  const Mat e_kv = project_bound(L.latent, e_latent, w.wkv_b, {});  // [T, n_heads*(nope_dim + v_head_dim)]
  r.k.resize(L.h.rows(), c.kv_dim());
  r.v.resize(L.h.rows(), c.v_dim());
  for (int h = 0; h < H; ++h) {
    r.k.middleCols(h * hd, nope) = e_kv.middleCols(h * (nope + vd), nope);
    r.k.middleCols(h * hd + nope, rd) = e_kva.rightCols(rd);
    r.v.middleCols(h * vd, vd) = e_kv.middleCols(h * (nope + vd) + nope, vd);
  }
  return r;
}

QkvErrors qkv_bound(const LayerTrace<double>& L, const Mat& eh, const LayerWeights& w, const ModelConfig& c) {
  if (c.mla.active()) return latent_qkv_bound(L, eh, w, c);
  QkvErrors r{project_bound(L.h, eh, w.wq, w.bq), project_bound(L.h, eh, w.wk, w.bk), project_bound(L.h, eh, w.wv, w.bv)};
  if (c.qk_norm) {
    r.q = head_rms_norm_bound(L.q_proj, r.q, L.q_lin, gain_of(c, w.q_norm), c.rms_norm_eps);
    r.k = head_rms_norm_bound(L.k_proj, r.k, L.k_lin, gain_of(c, w.k_norm), c.rms_norm_eps);
  }
  return r;
}

std::vector<double> finish(const Mat& e) {
  std::vector<double> out(e.size());
  for (Eigen::Index i = 0; i < e.size(); ++i) out[i] = e.data()[i] * kEvaluationSlack + kUnderflowFloor;
  return out;
}

}  // namespace

double rope_frequency_rel(const ModelConfig& c, int pair) {
  const int width = c.rope_head_dim();
  const double exponent = double(2 * pair) / double(width);
  // The rounded exponent is exact iff its product with the width gives back 2i exactly.
  const bool exact_exponent = std::fma(exponent, double(width), -double(2 * pair)) == 0;
  const double exponent_rel = exact_exponent ? 0 : std::expm1(exponent * u * std::log(c.rope_theta));
  const double plain = (1 + exponent_rel) * (1 + kLibmRel) - 1;  // pow's result
  if (!c.rope_scaling.active()) return plain;
  return scaled_frequency_rel(c.rope_scaling, std::pow(c.rope_theta, -exponent), plain);
}

Mat embedding_error_bound(const ModelConfig& c, const RowMatrix<double>& embedded) {
  if (c.embed_scale == 1.0) return Mat::Zero(embedded.rows(), embedded.cols());
  return kOpRel * embedded.cwiseAbs();
}

std::vector<std::vector<double>> f64_error_bounds(const Model& model, const ForwardTrace<double>& tr,
                                                  const TapSelection& selection, const RowMatrix<double>& residual_error) {
  const ModelConfig& c = model.config;
  const int T = int(tr.logits.rows());
  const RopeErrors rope_errors = rope_table_bound(tr, c);
  std::vector<std::vector<double>> layer_taps;
  Mat ex = residual_error.size() ? residual_error : Mat::Zero(T, c.dim);  // [T, dim]
  for (std::size_t i = 0; i < tr.layers.size(); ++i) {
    const LayerTrace<double>& L = tr.layers[i];
    const LayerWeights& w = model.layers[tr.first_layer + i];
    const Mat eh = rms_norm_bound(L.x_in, ex, L.h, gain_of(c, w.attn_norm), c.rms_norm_eps);
    const QkvErrors lin = qkv_bound(L, eh, w, c);
    const Mat eq = rope_bound(L.q_lin, lin.q, tr, rope_errors, c);
    const Mat ek = rope_bound(L.k_lin, lin.k, tr, rope_errors, c);
    const AttentionErrors ea = attention_bound(L, eq, ek, lin.v, c, tr.first_layer + int(i));
    Mat e_attn = project_bound(L.attn_out, ea.out, w.wo, {});
    // Gemma 2's post-norms: the RMSNorm rule on the block's output and its propagated error.
    if (c.sandwich_norms)
      e_attn = rms_norm_bound(L.attn_proj, e_attn, L.attn_post, gain_of(c, w.post_attn_norm), c.rms_norm_eps);
    const Mat e_mid = residual_bound(ex, e_attn, L.x_mid);
    const Mat eh2 = rms_norm_bound(L.x_mid, e_mid, L.h2, gain_of(c, w.ffn_norm), c.rms_norm_eps);
    const Mat e_gate = project_bound(L.h2, eh2, w.w1, {});
    const Mat e_up = project_bound(L.h2, eh2, w.w3, {});
    const Mat e_act = activation_bound(L, e_gate, c.activation);
    const Mat e_mix = product_bound(L.act, e_act, L.up, e_up, L.mix);
    Mat e_ffn = project_bound(L.mix, e_mix, w.w2, {});
    if (c.sandwich_norms)
      e_ffn = rms_norm_bound(L.ffn_proj, e_ffn, L.ffn_post, gain_of(c, w.post_ffn_norm), c.rms_norm_eps);
    ex = residual_bound(e_mid, e_ffn, L.out);
    const int l = tr.first_layer + int(i);
    auto keep = [&](const char* what, auto&& make) {
      if (selection.wants(tap_layer_name(l, what))) layer_taps.push_back(make());
    };
    keep("q", [&] { return finish(eq); });
    keep("k", [&] { return finish(ek); });
    keep("v", [&] { return finish(lin.v); });
    keep("attn.probs", [&] {
      std::vector<double> probs;  // [n_heads, T, T]
      for (const Mat& p : ea.probs) {
        std::vector<double> head = finish(p);
        // Above the diagonal both sides are exactly zero.
        for (int t = 0; t < T; ++t)
          for (int j = t + 1; j < T; ++j) head[std::size_t(t) * T + j] = 0;
        probs.insert(probs.end(), head.begin(), head.end());
      }
      return probs;
    });
    keep("attn.out", [&] { return finish(ea.out); });
    keep("out", [&] { return finish(ex); });
  }
  const Mat e_final = rms_norm_bound(tr.final_in, ex, tr.final_h, gain_of(c, model.final_norm), c.rms_norm_eps);
  Mat e_logits = project_bound(tr.final_h, e_final, model.classifier, {});
  if (c.final_softcap > 0) e_logits = soft_cap_bounds(tr.uncapped_logits, e_logits, c.final_softcap);
  std::vector<std::vector<double>> taps = {finish(e_logits)};
  taps.insert(taps.end(), std::make_move_iterator(layer_taps.begin()), std::make_move_iterator(layer_taps.end()));
  return taps;
}

TapSet f64_error_bound(const Model& model, const std::vector<int>& tokens, const TapSelection& selection) {
  const RowMatrix<double> embedded = embed_tokens<double>(model, tokens);
  const ForwardTrace<double> trace = trace_forward_from<double>(model, 0, embedded);
  return to_tap_set(model.config, int(tokens.size()), selection, 0,
                    f64_error_bounds(model, trace, selection, embedding_error_bound(model.config, embedded)));
}

}  // namespace kvfid::ref
