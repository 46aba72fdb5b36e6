#include "reference/f64/forward_trace.h"

#include <cmath>
#include <numbers>

#include "reference/f64/weight_blocks.h"
#include "reference/util/input_error.h"
#include "reference/io/prompt.h"

namespace kvfid::ref {

namespace {

// [T, out] = X W^T (+ b per row). Every element is one dot product of length `in`,
// summed in whatever order Eigen's product kernel picks; the bias is added after.
template <class Scalar>
RowMatrix<Scalar> project(const RowMatrix<Scalar>& x, const Matrix& w, const std::vector<double>& bias) {
  RowMatrix<Scalar> y(x.rows(), w.rows);  // [T, out]
  for_each_weight_block(w, [&](int first, const RowMatrix<double>& block) {
    if (block.rows() == w.rows) y = x * block.template cast<Scalar>().transpose();
    else y.middleCols(first, block.rows()) = x * block.template cast<Scalar>().transpose();
  });
  if (!bias.empty())
    for (Eigen::Index t = 0; t < y.rows(); ++t)
      for (Eigen::Index o = 0; o < y.cols(); ++o) y(t, o) += Scalar(bias[o]);
  return y;
}

// Row-wise x / sqrt(mean(x^2) + eps) * gain, in this order of operations:
// sum of squares, / n, + eps, sqrt, reciprocal, * x, * gain (f64_error_bound.cpp
// counts exactly these roundings).
template <class Scalar>
RowMatrix<Scalar> rms_norm(const RowMatrix<Scalar>& x, const std::vector<Scalar>& gain, double eps) {
  RowMatrix<Scalar> y(x.rows(), x.cols());  // [T, dim]
  const Scalar n = Scalar(x.cols());
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    Scalar sum_sq = 0;
    for (Eigen::Index i = 0; i < x.cols(); ++i) sum_sq += x(t, i) * x(t, i);
    const Scalar inv = Scalar(1) / std::sqrt(sum_sq / n + Scalar(eps));
    for (Eigen::Index i = 0; i < x.cols(); ++i) y(t, i) = (x(t, i) * inv) * gain[i];
  }
  return y;
}

// Qwen3's per-head RMSNorm of x ([T, heads*head_dim]) by the gain [head_dim] every head
// shares: rms_norm on the rows of x seen as [T*heads, head_dim].
template <class Scalar>
RowMatrix<Scalar> head_rms_norm(const RowMatrix<Scalar>& x, const std::vector<Scalar>& gain, double eps) {
  const Eigen::Index head_dim = Eigen::Index(gain.size());
  const RowMatrix<Scalar> heads = Eigen::Map<const RowMatrix<Scalar>>(x.data(), x.size() / head_dim, head_dim);
  const RowMatrix<Scalar> normed = rms_norm(heads, gain, eps);
  return Eigen::Map<const RowMatrix<Scalar>>(normed.data(), x.rows(), x.cols());
}

template <class Scalar>
void rope_tables(ForwardTrace<Scalar>& tr, const ModelConfig& c, int T) {
  const int width = c.rope_head_dim(), pairs = width / 2;
  tr.angle.resize(T, pairs);
  tr.cos.resize(T, pairs);
  tr.sin.resize(T, pairs);
  for (int i = 0; i < pairs; ++i) {
    const Scalar exponent = Scalar(2 * i) / Scalar(width);
    Scalar freq = std::pow(Scalar(c.rope_theta), -exponent);
    if (c.rope_scaling.active()) freq = llama3_scaled_frequency(c.rope_scaling, freq, std::numbers::pi_v<Scalar>);
    for (int t = 0; t < T; ++t) {
      tr.angle(t, i) = Scalar(t) * freq;
      tr.cos(t, i) = std::cos(tr.angle(t, i));
      tr.sin(t, i) = std::sin(tr.angle(t, i));
    }
  }
}

// Rotates the rope part of every head of `x` ([T, heads*head_dim]) in place, the
// rope_head_dim() entries from nope_dim() on (the whole head but under latent attention):
// (a, b) -> (a cos - b sin, a sin + b cos) on each rope_pair. Latent attention's k_pe is
// in every key head, each copy turned by the same operations on the same values, so the
// copies stay equal to the one rotated k_pe the cache holds.
template <class Scalar>
void apply_rope(RowMatrix<Scalar>& x, const ForwardTrace<Scalar>& tr, const ModelConfig& c) {
  const int pairs = c.rope_head_dim() / 2;
  const int heads = int(x.cols()) / c.head_dim;
  for (Eigen::Index t = 0; t < x.rows(); ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < pairs; ++i) {
        const auto [pa, pb] = rope_pair(c, i);
        const int part = h * c.head_dim + c.nope_dim(), ia = part + pa, ib = part + pb;
        const Scalar a = x(t, ia), b = x(t, ib), cs = tr.cos(t, i), sn = tr.sin(t, i);
        x(t, ia) = a * cs - b * sn;
        x(t, ib) = a * sn + b * cs;
      }
}

// Latent attention's q_lin, k_lin and v (and the steps before them, kept in L) from L.h.
template <class Scalar>
void latent_qkv(LayerTrace<Scalar>& L, const LayerWeights& w, const ModelConfig& c) {
  const LatentAttention& a = c.mla;
  const int H = c.n_heads, hd = c.head_dim, nope = c.nope_dim(), vd = a.v_head_dim, rd = a.rope_dim;
  if (a.q_lora_rank > 0) {
    L.q_a = project(L.h, w.wq_a, {});
    L.q_c = rms_norm(L.q_a, norm_gain<Scalar>(c, w.q_a_norm), c.rms_norm_eps);
    L.q_lin = project(L.q_c, w.wq, {});
  } else {
    L.q_lin = project(L.h, w.wq, {});
  }
  L.kv_a = project(L.h, w.wkv_a, {});
  const RowMatrix<Scalar> raw = L.kv_a.leftCols(a.kv_lora_rank);  // [T, kv_lora_rank]
  L.latent = rms_norm(raw, norm_gain<Scalar>(c, w.kv_a_norm), c.rms_norm_eps);
  L.kv = project(L.latent, w.wkv_b, {});
  L.k_lin.resize(L.h.rows(), c.kv_dim());
  L.v.resize(L.h.rows(), c.v_dim());
  for (int h = 0; h < H; ++h) {
    L.k_lin.middleCols(h * hd, nope) = L.kv.middleCols(h * (nope + vd), nope);
    L.k_lin.middleCols(h * hd + nope, rd) = L.kv_a.rightCols(rd);
    L.v.middleCols(h * vd, vd) = L.kv.middleCols(h * (nope + vd) + nope, vd);
  }
}

// Causal GQA attention of one layer: fills scores (and uncapped_scores), probs and attn_out.
template <class Scalar>
void attention(LayerTrace<Scalar>& L, const ModelConfig& c, int T, int layer) {
  const int hd = c.head_dim, vd = c.v_head_dim();  // key and value head widths
  const Scalar sqrt_d = std::sqrt(Scalar(c.score_scale_dim()));
  const bool capped = c.attn_softcap > 0;
  L.scores.assign(c.n_heads, RowMatrix<Scalar>::Zero(T, T));
  if (capped) L.uncapped_scores.assign(c.n_heads, RowMatrix<Scalar>::Zero(T, T));
  L.probs.assign(c.n_heads, RowMatrix<Scalar>::Zero(T, T));
  L.attn_out = RowMatrix<Scalar>::Zero(T, c.attn_out_dim());
  for (int h = 0; h < c.n_heads; ++h) {
    const int q_off = h * hd, kv_off = c.kv_head_of(h) * hd, v_off = c.kv_head_of(h) * vd, out_off = h * vd;
    RowMatrix<Scalar>& s = L.scores[h];  // [T, T]
    RowMatrix<Scalar>& p = L.probs[h];   // [T, T]
    for (int t = 0; t < T; ++t) {
      const int first = c.first_key(layer, t);  // keys [first, t]; the rest stay exactly zero
      for (int j = first; j <= t; ++j) {
        Scalar dot = 0;
        for (int d = 0; d < hd; ++d) dot += L.q(t, q_off + d) * L.k(j, kv_off + d);
        s(t, j) = dot / sqrt_d;
        if (capped) {
          L.uncapped_scores[h](t, j) = s(t, j);
          s(t, j) = soft_cap(s(t, j), c.attn_softcap);
        }
      }
      Scalar max = s(t, first);
      for (int j = first + 1; j <= t; ++j) max = std::max(max, s(t, j));
      Scalar sum = 0;
      for (int j = first; j <= t; ++j) {
        p(t, j) = std::exp(s(t, j) - max);
        sum += p(t, j);
      }
      for (int j = first; j <= t; ++j) p(t, j) /= sum;
      for (int d = 0; d < vd; ++d) {
        Scalar acc = 0;
        for (int j = first; j <= t; ++j) acc += p(t, j) * L.v(j, v_off + d);
        L.attn_out(t, out_off + d) = acc;
      }
    }
  }
}

template <class Scalar>
Scalar silu(Scalar z) {
  return z / (Scalar(1) + std::exp(-z));
}

// The gated activation act(gate), elementwise.
template <class Scalar>
RowMatrix<Scalar> activate(const RowMatrix<Scalar>& gate, Activation activation) {
  if (activation == Activation::silu) return gate.unaryExpr([](Scalar z) { return silu(z); });
  return gate.unaryExpr([](Scalar z) { return gelu_tanh_steps(z).value; });
}

// Gemma 2's post-norm of a block's output y ([T, dim]) before the residual add: keeps
// y and its norm in the trace and returns what the residual adds.
template <class Scalar>
const RowMatrix<Scalar>& post_norm(RowMatrix<Scalar> y, RowMatrix<Scalar>& kept, RowMatrix<Scalar>& normed,
                                   const std::vector<double>& gain, const ModelConfig& c) {
  kept = std::move(y);
  normed = rms_norm(kept, norm_gain<Scalar>(c, gain), c.rms_norm_eps);
  return normed;
}

}  // namespace

template <class Scalar>
RowMatrix<Scalar> embed_tokens(const Model& model, const std::vector<int>& tokens) {
  validate_tokens(tokens, model.config, "forward");
  const bool scaled = model.config.embed_scale != 1.0;
  RowMatrix<Scalar> x(tokens.size(), model.config.dim);  // [T, dim]
  std::vector<double> row(std::size_t(model.config.dim));  // [dim]
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    model.embedding.decode_row(tokens[t], row.data());
    for (int i = 0; i < model.config.dim; ++i) {
      x(t, i) = Scalar(row[std::size_t(i)]);
      if (scaled) x(t, i) *= Scalar(model.config.embed_scale);
    }
  }
  return x;
}

template <class Scalar>
ForwardTrace<Scalar> trace_forward(const Model& model, const std::vector<int>& tokens) {
  return trace_forward_from(model, 0, embed_tokens<Scalar>(model, tokens));
}

template <class Scalar>
ForwardTrace<Scalar> trace_forward_from(const Model& model, int first_layer, const RowMatrix<Scalar>& residual) {
  const ModelConfig& c = model.config;
  const int T = int(residual.rows());
  if (first_layer < 0 || first_layer > c.n_layers || residual.cols() != c.dim || T < 1 || T > c.max_seq)
    throw InputError("forward", "cannot start at layer " + std::to_string(first_layer) + " with a residual of " +
                                    std::to_string(T) + "x" + std::to_string(residual.cols()));
  ForwardTrace<Scalar> tr;
  tr.first_layer = first_layer;
  rope_tables(tr, c, T);

  RowMatrix<Scalar> x = residual;  // [T, dim]
  for (int l = first_layer; l < c.n_layers; ++l) {
    const LayerWeights& w = model.layers[l];
    LayerTrace<Scalar> L;
    L.x_in = x;
    L.h = rms_norm(L.x_in, norm_gain<Scalar>(c, w.attn_norm), c.rms_norm_eps);
    if (c.mla.active()) {
      latent_qkv(L, w, c);
    } else {
      L.q_lin = project(L.h, w.wq, w.bq);
      L.k_lin = project(L.h, w.wk, w.bk);
      if (c.qk_norm) {
        L.q_proj = std::move(L.q_lin);
        L.k_proj = std::move(L.k_lin);
        L.q_lin = head_rms_norm(L.q_proj, norm_gain<Scalar>(c, w.q_norm), c.rms_norm_eps);
        L.k_lin = head_rms_norm(L.k_proj, norm_gain<Scalar>(c, w.k_norm), c.rms_norm_eps);
      }
      L.v = project(L.h, w.wv, w.bv);
    }
    L.q = L.q_lin;
    L.k = L.k_lin;
    apply_rope(L.q, tr, c);
    apply_rope(L.k, tr, c);
    attention(L, c, T, l);
    if (c.sandwich_norms)
      L.x_mid = L.x_in + post_norm(project(L.attn_out, w.wo, {}), L.attn_proj, L.attn_post, w.post_attn_norm, c);
    else
      L.x_mid = L.x_in + project(L.attn_out, w.wo, {});
    L.h2 = rms_norm(L.x_mid, norm_gain<Scalar>(c, w.ffn_norm), c.rms_norm_eps);
    L.gate = project(L.h2, w.w1, {});
    L.up = project(L.h2, w.w3, {});
    L.act = activate(L.gate, c.activation);
    L.mix = L.act.cwiseProduct(L.up);
    if (c.sandwich_norms)
      L.out = L.x_mid + post_norm(project(L.mix, w.w2, {}), L.ffn_proj, L.ffn_post, w.post_ffn_norm, c);
    else
      L.out = L.x_mid + project(L.mix, w.w2, {});
    x = L.out;
    tr.layers.push_back(std::move(L));
  }
  tr.final_in = x;
  tr.final_h = rms_norm(tr.final_in, norm_gain<Scalar>(c, model.final_norm), c.rms_norm_eps);
  tr.logits = project(tr.final_h, model.classifier, {});
  if (c.final_softcap > 0) {
    tr.uncapped_logits = tr.logits;
    tr.logits = tr.uncapped_logits.unaryExpr([&](Scalar z) { return soft_cap(z, c.final_softcap); });
  }
  return tr;
}

std::vector<TapSpec> trace_tap_specs(const ModelConfig& config, int tokens, const TapSelection& selection, int first_layer) {
  std::vector<TapSpec> specs;
  for (TapSpec& s : tap_specs(config, tokens, selection)) {
    bool skipped = false;
    for (int l = 0; l < first_layer; ++l) skipped = skipped || s.name.rfind(tap_layer_name(l, ""), 0) == 0;
    if (!skipped) specs.push_back(std::move(s));
  }
  return specs;
}

TapSet to_tap_set(const ModelConfig& config, int tokens, const TapSelection& selection, int first_layer,
                  std::vector<std::vector<double>> values) {
  const std::vector<TapSpec> specs = trace_tap_specs(config, tokens, selection, first_layer);
  TapSet taps;
  for (std::size_t i = 0; i < specs.size(); ++i) taps.push_back({specs[i].name, specs[i].shape, std::move(values[i])});
  return taps;
}

template <class Scalar>
std::vector<std::vector<Scalar>> tap_values(const ForwardTrace<Scalar>& tr, const ModelConfig& c,
                                            const TapSelection& selection) {
  auto flat = [](const RowMatrix<Scalar>& m) { return std::vector<Scalar>(m.data(), m.data() + m.size()); };
  std::vector<std::vector<Scalar>> values = {flat(tr.logits)};
  for (std::size_t i = 0; i < tr.layers.size(); ++i) {
    const LayerTrace<Scalar>& L = tr.layers[i];
    const int l = tr.first_layer + int(i);
    auto keep = [&](const char* what, auto&& make) {
      if (selection.wants(tap_layer_name(l, what))) values.push_back(make());
    };
    keep("q", [&] { return flat(L.q); });  // [T, n_heads*head_dim] is [T, n_heads, head_dim] row-major (v likewise)
    keep("k", [&] { return flat(L.k); });
    keep("v", [&] { return flat(L.v); });
    keep("attn.probs", [&] {
      std::vector<Scalar> probs;  // [n_heads, T, T]
      for (int h = 0; h < c.n_heads; ++h)
        probs.insert(probs.end(), L.probs[h].data(), L.probs[h].data() + L.probs[h].size());
      return probs;
    });
    keep("attn.out", [&] { return flat(L.attn_out); });
    keep("out", [&] { return flat(L.out); });
  }
  return values;
}

template RowMatrix<double> embed_tokens<double>(const Model&, const std::vector<int>&);
template RowMatrix<long double> embed_tokens<long double>(const Model&, const std::vector<int>&);
template ForwardTrace<double> trace_forward<double>(const Model&, const std::vector<int>&);
template ForwardTrace<long double> trace_forward<long double>(const Model&, const std::vector<int>&);
template ForwardTrace<double> trace_forward_from<double>(const Model&, int, const RowMatrix<double>&);
template ForwardTrace<long double> trace_forward_from<long double>(const Model&, int, const RowMatrix<long double>&);
template std::vector<std::vector<double>> tap_values(const ForwardTrace<double>&, const ModelConfig&, const TapSelection&);
template std::vector<std::vector<long double>> tap_values(const ForwardTrace<long double>&, const ModelConfig&,
                                                          const TapSelection&);

}  // namespace kvfid::ref
