#include "reference/native/native_forward.h"

#include <algorithm>
#include <stdexcept>
#include <map>

#include "reference/mp/kv_rotate.h"
#include "reference/mp/ball_arith.h"
#include "reference/mp/kv_store.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/rope.h"
#include "reference/mp/swiglu.h"
#include "reference/native/f16_dots.h"
#include "reference/native/format_arith.h"
#include "reference/native/native_projection.h"

namespace kvfid::ref::native {

namespace {

using Floats = std::vector<float>;

// The float64 the MPFR forward's tap holds for v: the value itself, or for NaN the one
// NaN mpfr_get_d returns (to_doubles of reference/mp/mp_array.h).
double tap_value(float v) {
  static const double mpfr_nan = [] {
    MpArray n(1, 24);
    mpfr_set_nan(n[0]);
    return mpfr_get_d(n[0], MPFR_RNDN);
  }();
  return v == v ? double(v) : mpfr_nan;
}

std::vector<double> tap_values(const Floats& v) {
  std::vector<double> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = tap_value(v[i]);
  return out;
}

MpArray to_mp(const Floats& v, mpfr_prec_t precision) {
  MpArray a(v.size(), precision);
  for (std::size_t i = 0; i < v.size(); ++i) mpfr_set_flt(a[i], v[i], MPFR_RNDN);  // exact
  return a;
}

Floats to_floats(const MpArray& a) {
  Floats v(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) v[i] = mpfr_get_flt(a[i], MPFR_RNDN);  // exact: values in the format
  return v;
}

template <FloatFormat F>
struct Forward {
  using A = FormatArith<F>;
  const ModelConfig& c;
  int T;
  int threads;

  // v times a norm's gain: w, or under norm_unit_offset 1 + w (mp_weights.h holds it
  // exactly), i.e. RN(v + v w) with v w exact in binary64 (24 + 24 bits).
  float gain(float v, double w) const {
    return c.norm_unit_offset ? A::add_any(v, double(v) * w) : A::mul_any(v, w);
  }

  // Gemma 2's soft-cap as BallArith::soft_cap: RN(cap RN(tanh RN(z / cap))), cap an
  // exact float64.
  static float soft_cap(float z, double cap) { return A::mul_any(A::tanh(A::div_any(z, cap)), cap); }

  // attention_score.h: the dot product over the rounded sqrt(score_scale_dim), then the
  // model's cap.
  float finish_score(float dot, float root) const {
    const float s = A::div(dot, root);
    return c.attn_softcap > 0 ? soft_cap(s, c.attn_softcap) : s;
  }

  // rms_norm.cpp: sum of squares in order, / dim, + eps, sqrt, then x / rms * weight.
  // rows of weight.size() each: the T tokens, or Qwen3's T x heads heads.
  void rms_norm(Floats& out, const Floats& x, const std::vector<double>& weight, int rows) const {
    const int dim = int(weight.size());
    parallel_for(rows, threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = begin; t < end; ++t) {
        const std::size_t row = std::size_t(t) * dim;
        float rms = 0.0f;
        for (int i = 0; i < dim; ++i) rms = A::add(rms, A::mul(x[row + i], x[row + i]));
        rms = A::div_any(rms, double(dim));
        rms = A::add_any(rms, c.rms_norm_eps);
        rms = A::sqrt(rms);
        for (int i = 0; i < dim; ++i) out[row + i] = gain(A::div(x[row + i], rms), weight[std::size_t(i)]);
      }
    });
  }

  // rope.cpp's apply_rope with the table rounded by MPFR.
  void rope(Floats& x, const Floats& cos, const Floats& sin, int heads) const {
    const int half = c.head_dim / 2, head_dim = c.head_dim;
    parallel_for(std::int64_t(T) * heads, threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t item = begin; item < end; ++item) {
        const int t = int(item / heads);
        const std::size_t head = std::size_t(item) * head_dim;
        for (int i = 0; i < half; ++i) {
          const bool interleaved = c.rope == RopeStyle::interleaved;
          float& a = x[head + (interleaved ? 2 * i : i)];
          float& b = x[head + (interleaved ? 2 * i + 1 : i + half)];
          const float co = cos[std::size_t(t) * half + i], si = sin[std::size_t(t) * half + i];
          const float a_cos = A::mul(a, co), b_sin = A::mul(b, si), a_sin = A::mul(a, si), b_cos = A::mul(b, co);
          a = A::sub(a_cos, b_sin);
          b = A::add(a_sin, b_cos);
        }
      }
    });
  }

  // softmax.cpp: the first largest value, then x - max, exp, summed in order, divided.
  static void softmax(float* x, int n) {
    float max = x[0];
    for (int j = 1; j < n; ++j)
      if (x[j] > max) max = x[j];
    float sum = 0.0f;
    for (int j = 0; j < n; ++j) {
      x[j] = A::exp(A::sub(x[j], max));
      sum = A::add(sum, x[j]);
    }
    for (int j = 0; j < n; ++j) x[j] = A::div(x[j], sum);
  }

  // attention.cpp over the cache's forms (as doubles: a KV policy's values need not be
  // in the format): scores, / scale, softmax, then cold values and hot values as one sum.
  void attention(Floats& probs, Floats& out, const Floats& q, const std::vector<double>& k_cold,
                 const std::vector<double>& k_hot, const std::vector<double>& v_cold, const std::vector<double>& v_hot,
                 int hot_window, int k_group, float scale, int layer) const {
    // The vectorized binary16 path reads every key up to t: windowed layers take this one.
    if (F == FloatFormat::f16 && c.window_of(layer) == 0 && c.head_dim % kF16DotLanes == 0 && f16_dots_available()) {
      const KvF16 kv{k_cold, k_hot, v_cold, v_hot, T, c.kv_dim()};
      if (kv.binary32) return attention_f16(probs, out, q, kv, hot_window, k_group, scale);
    }
    const int hd = c.head_dim, q_dim = c.q_dim(), kv_dim = c.kv_dim();
    parallel_for(std::int64_t(c.n_heads) * T, threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t item = begin; item < end; ++item) {
        const int h = int(item / T), t = int(item % T);
        const int kv_h = c.kv_head_of(h);
        float* row = probs.data() + std::size_t(item) * T;
        const float* query = q.data() + std::size_t(t) * q_dim + std::size_t(h) * hd;
        const int k_end = quant::cold_end(t, hot_window, k_group);
        const int v_end = quant::cold_end(t, hot_window, 0);
        const int first = c.first_key(layer, t);  // keys [first, t] (attention.cpp's mask)
        for (int j = first; j <= t; ++j) {
          const double* key = (j < k_end ? k_cold : k_hot).data() + std::size_t(j) * kv_dim + std::size_t(kv_h) * hd;
          float s = 0.0f;
          for (int i = 0; i < hd; ++i) s = A::add(s, A::mul_any(query[i], key[i]));
          row[j] = finish_score(s, scale);
        }
        softmax(row + first, t + 1 - first);
        for (int j = 0; j < first; ++j) row[j] = 0.0f;
        for (int j = t + 1; j < T; ++j) row[j] = 0.0f;
        for (int d = 0; d < hd; ++d) {
          const std::size_t column = std::size_t(kv_h) * hd + d;
          float o = 0.0f;
          for (int j = first; j <= t; ++j) {
            const double value = (j < v_end ? v_cold : v_hot)[std::size_t(j) * kv_dim + column];
            o = A::add(o, A::mul_any(row[j], value));
          }
          out[std::size_t(t) * q_dim + std::size_t(h) * hd + d] = o;
        }
      }
    });
  }

  // The cache's forms as binary32 for accumulate_f16 (f16_dots.h): keys transposed so that
  // one query's scores are lanes, values as they are (a probability row times them gives
  // the head's dimensions as lanes). Used when every value is binary32 (query and
  // probabilities are binary16), else the scalar path; `products` says which kind.
  struct KvF16 {
    int stride;                      // key columns: T rounded up, plus one vector for reads at an offset
    Floats k_cold, k_hot;            // [kv_dim, stride], zero past T
    Floats v_cold, v_hot;            // [T, kv_dim]
    bool binary32 = true;
    F16Products products = F16Products::binary32;

    KvF16(const std::vector<double>& kc, const std::vector<double>& kh, const std::vector<double>& vc,
          const std::vector<double>& vh, int T, int kv_dim)
        : stride((T + kF16DotLanes - 1) / kF16DotLanes * kF16DotLanes + kF16DotLanes),
          k_cold(std::size_t(kv_dim) * stride, 0.0f), k_hot(k_cold.size(), 0.0f), v_cold(vc.size()), v_hot(vh.size()) {
      auto narrow = [&](double d) {
        binary32 = binary32 && fits_binary32(d);
        return float(d);
      };
      for (int j = 0; j < T; ++j)
        for (int i = 0; i < kv_dim; ++i) {
          const std::size_t from = std::size_t(j) * kv_dim + i, to = std::size_t(i) * stride + j;
          k_cold[to] = narrow(kc[from]), k_hot[to] = narrow(kh[from]);
          v_cold[from] = narrow(vc[from]), v_hot[from] = narrow(vh[from]);
        }
      if (f16_dot_operands(k_cold.data(), k_cold.size()) && f16_dot_operands(k_hot.data(), k_hot.size()) &&
          f16_dot_operands(v_cold.data(), v_cold.size()) && f16_dot_operands(v_hot.data(), v_hot.size()))
        products = F16Products::narrow;
    }
  };

  // attention() with its two dot products on accumulate_f16, in the same order: a query's
  // scores over the cold keys [0, k_end) and the hot ones [k_end, t] (lanes: keys), and
  // each output dimension's sum over the cold values then the hot ones (lanes: the
  // head's dimensions), one chain continued across the two.
  void attention_f16(Floats& probs, Floats& out, const Floats& q, const KvF16& kv, int hot_window, int k_group,
                     float scale) const {
    const int hd = c.head_dim, q_dim = c.q_dim(), kv_dim = c.kv_dim();
    parallel_for(std::int64_t(c.n_heads) * T, threads, [&](std::int64_t begin, std::int64_t end) {
      Floats cold(std::size_t(kv.stride)), hot(std::size_t(kv.stride));  // [stride] scores from each form
      for (std::int64_t item = begin; item < end; ++item) {
        const int h = int(item / T), t = int(item % T);
        const std::size_t head = std::size_t(c.kv_head_of(h)) * hd;
        float* row = probs.data() + std::size_t(item) * T;
        const float* query = q.data() + std::size_t(t) * q_dim + std::size_t(h) * hd;
        const int k_end = quant::cold_end(t, hot_window, k_group);
        const int v_end = quant::cold_end(t, hot_window, 0);
        auto lanes = [](int n) { return (n + kF16DotLanes - 1) / kF16DotLanes * kF16DotLanes; };
        std::fill(cold.begin(), cold.end(), 0.0f);
        std::fill(hot.begin(), hot.end(), 0.0f);
        const std::size_t keys = head * kv.stride;  // row of the head's first dimension
        accumulate_f16(cold.data(), query, hd, kv.k_cold.data() + keys, kv.stride, lanes(k_end), kv.products);
        accumulate_f16(hot.data(), query, hd, kv.k_hot.data() + keys + k_end, kv.stride, lanes(t + 1 - k_end),
                       kv.products);
        for (int j = 0; j <= t; ++j) row[j] = finish_score(j < k_end ? cold[j] : hot[j - k_end], scale);
        softmax(row, t + 1);
        for (int j = t + 1; j < T; ++j) row[j] = 0.0f;
        float* o = out.data() + std::size_t(t) * q_dim + std::size_t(h) * hd;
        std::fill(o, o + hd, 0.0f);
        accumulate_f16(o, row, v_end, kv.v_cold.data() + head, std::size_t(kv_dim), hd, kv.products);
        accumulate_f16(o, row + v_end, t + 1 - v_end, kv.v_hot.data() + std::size_t(v_end) * kv_dim + head,
                       std::size_t(kv_dim), hd, kv.products);
      }
    });
  }

  // swiglu.cpp: gate <- gate / (1 + exp(-gate)) * up.
  void swiglu(Floats& gate, const Floats& up) const {
    parallel_for(std::int64_t(gate.size()), threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const float denominator = A::add(A::exp(-gate[i]), 1.0f);
        gate[i] = A::mul(A::div(gate[i], denominator), up[i]);
      }
    });
  }

  // swiglu.cpp's GeGLU: gate <- (0.5 gate)(1 + tanh(C (gate + A gate^3))) * up, every
  // step rounded, with C and A as gelu_tanh_constants rounds them.
  void geglu(Floats& gate, const Floats& up, float c_const, float a_const) const {
    parallel_for(std::int64_t(gate.size()), threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        const float z = gate[i];
        const float cube = A::mul(A::mul(z, z), z);
        const float t = A::tanh(A::mul(c_const, A::add(z, A::mul(a_const, cube))));
        gate[i] = A::mul(A::mul(A::mul(0.5f, z), A::add(1.0f, t)), up[i]);
      }
    });
  }

  // A block's output into the residual: Gemma 2's post-norm first, when the model has one.
  void add_block(Floats& x, Floats& block_out, const std::vector<double>& post_norm, Floats& scratch) const {
    if (!c.sandwich_norms) return add_in_place(x, block_out);
    rms_norm(scratch, block_out, post_norm, T);
    add_in_place(x, scratch);
  }

  void add_in_place(Floats& x, const Floats& y) const {
    parallel_for(std::int64_t(x.size()), threads, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) x[i] = A::add(x[i], y[i]);
    });
  }

  void project(Floats& out, const Matrix& m, const Floats& x, const std::vector<double>& bias) const {
    native::project<F>(out, m, x, bias, T, threads);
  }

  // x [rows, head_dim] <- m x per row (a rotation or its transpose), in place.
  void rotate(Floats& x, const Matrix& m, int rows) const {
    Floats out(x.size());
    native::project<F>(out, m, x, {}, rows, threads);
    x.swap(out);
  }

  TapSet run(const Model& stored, const std::vector<int>& tokens, const quant::KvPolicy& kv,
             const TapSelection& selection) const {
    const MpArith arith = MpArith::ieee(F);
    const std::size_t n = std::size_t(T);
    std::map<std::string, std::vector<double>> produced;

    Floats x(n * c.dim);  // [T, dim] residual stream
    std::vector<double> row(std::size_t(c.dim));
    for (int t = 0; t < T; ++t) {
      stored.embedding.decode_row(tokens[std::size_t(t)], row.data());
      for (int i = 0; i < c.dim; ++i) {
        float& e = x[std::size_t(t) * c.dim + i];
        e = A::round(row[std::size_t(i)]);
        if (c.embed_scale != 1.0) e = A::mul_any(e, c.embed_scale);  // Gemma's, as mp_forward.cpp
      }
    }
    const MpArray theta = mp_constant(c.rope_theta);
    const RopeTable table = make_rope_table(T, c.head_dim, theta[0], c.rope_scaling, arith);
    const Floats cos = to_floats(table.cos), sin = to_floats(table.sin);  // [T, head_dim / 2]
    MpArray scale_mp(1, arith.precision());
    arith.sqrt(scale_mp[0], mp_constant(c.score_scale_dim())[0]);
    const float scale = mpfr_get_flt(scale_mp[0], MPFR_RNDN);  // sqrt(score_scale_dim) rounded once
    float gelu_c = 0, gelu_a = 0;  // GeGLU's constants, rounded as the MPFR emulation rounds them
    if (c.activation == Activation::gelu_tanh) {
      MpArray k(2, arith.precision());
      BallArith ball(arith);
      gelu_tanh_constants(ball, {k[0]}, {k[1]});
      gelu_c = mpfr_get_flt(k[0], MPFR_RNDN), gelu_a = mpfr_get_flt(k[1], MPFR_RNDN);  // exact: in the format
    }

    const bool rotated = kv.rotation.active();
    const Matrix rotation = rotated ? rotation_matrix(kv.rotation, false) : Matrix();
    const Matrix rotation_back = rotated ? rotation_matrix(kv.rotation, true) : Matrix();
    Floats normed(n * c.dim), block_out(n * c.dim), post(c.sandwich_norms ? n * c.dim : 0);  // [T, dim]
    Floats gate(n * c.hidden), up(n * c.hidden);      // [T, hidden]
    const std::vector<double> no_bias;
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerWeights& w = stored.layers[std::size_t(l)];
      rms_norm(normed, x, w.attn_norm, T);
      Floats q(n * c.q_dim()), k(n * c.kv_dim()), v(n * c.kv_dim());  // [T, heads, head_dim]
      project(q, w.wq, normed, w.bq);
      project(k, w.wk, normed, w.bk);
      project(v, w.wv, normed, w.bv);
      if (c.qk_norm) {  // Qwen3: every head of q and k RMSNorm'd before RoPE
        Floats normed_heads(q.size());
        rms_norm(normed_heads, q, w.q_norm, T * c.n_heads);
        q.swap(normed_heads);
        normed_heads.resize(k.size());
        rms_norm(normed_heads, k, w.k_norm, T * c.n_kv_heads);
        k.swap(normed_heads);
      }
      rope(q, cos, sin, c.n_heads);
      rope(k, cos, sin, c.n_kv_heads);
      // A rotated policy (reference/mp/kv_rotate.h): q, k and v rotated by the plain
      // product (projection.h's ieee() rule, as rotate_rows computes it); the q tap
      // stays the model's.
      const Floats q_model = rotated ? q : Floats();
      if (rotated) {
        rotate(q, rotation, T * c.n_heads);
        rotate(k, rotation, T * c.n_kv_heads);
        rotate(v, rotation, T * c.n_kv_heads);
      }
      // The cache, as kv_store.h stores it (MPFR: T x kv_dim values per layer).
      const MpKvStore store = store_kv(to_mp(k, arith.precision()), to_mp(v, arith.precision()), kv, l, T, c);
      const AttentionKv view = store.view();
      Floats probs(std::size_t(c.n_heads) * n * n), attn_out(n * c.q_dim());  // [n_heads, T, T], [T, q_dim]
      attention(probs, attn_out, q, to_doubles(view.k_cold), to_doubles(view.k_hot), to_doubles(view.v_cold),
                to_doubles(view.v_hot), view.hot_window, view.k_group, scale, l);
      if (rotated) rotate(attn_out, rotation_back, T * c.n_heads);
      project(block_out, w.wo, attn_out, no_bias);
      add_block(x, block_out, w.post_attn_norm, post);

      rms_norm(normed, x, w.ffn_norm, T);
      project(gate, w.w1, normed, no_bias);
      project(up, w.w3, normed, no_bias);
      if (c.activation == Activation::silu) swiglu(gate, up);
      else geglu(gate, up, gelu_c, gelu_a);
      project(block_out, w.w2, gate, no_bias);
      add_block(x, block_out, w.post_ffn_norm, post);

      auto keep = [&](const char* what, auto&& values) {
        if (selection.wants(tap_layer_name(l, what))) produced[tap_layer_name(l, what)] = values();
      };
      // The k and v taps in the model's basis as every forward gives them (kv_rotate.h).
      const auto model_basis = [&](MpArray&& cached) {
        return rotated ? to_doubles(to_model_basis(cached, kv.rotation, T * c.n_kv_heads, threads))
                                    : to_doubles(cached);
      };
      keep("q", [&] { return tap_values(rotated ? q_model : q); });
      keep("k", [&] { return model_basis(own_keys(store, T, c.kv_dim())); });
      keep("v", [&] { return model_basis(own_values(store, T, c.kv_dim())); });
      keep("attn.probs", [&] { return tap_values(probs); });
      keep("attn.out", [&] { return tap_values(attn_out); });
      keep("out", [&] { return tap_values(x); });
    }

    rms_norm(normed, x, stored.final_norm, T);
    Floats logits(n * c.vocab);  // [T, vocab]
    project(logits, stored.classifier, normed, no_bias);
    if (c.final_softcap > 0)  // Gemma 2, as MpForwardRun::logits
      for (float& z : logits) z = soft_cap(z, c.final_softcap);
    produced["logits"] = tap_values(logits);

    TapSet taps;
    for (const TapSpec& spec : tap_specs(c, T, selection))
      taps.push_back(TapTensor{spec.name, spec.shape, std::move(produced.at(spec.name))});
    return taps;
  }
};

}  // namespace

TapSet native_forward(const Model& stored, const std::vector<int>& tokens, FloatFormat arithmetic,
                      const quant::KvPolicy& kv, const TapSelection& selection, int threads) {
  if (stored.config.mla.active()) throw std::invalid_argument("native_forward: latent attention is not built natively");
  ExponentRangeScope range;  // for the MPFR parts on this thread
  const int T = int(tokens.size());
  switch (arithmetic) {
    case FloatFormat::f32: return Forward<FloatFormat::f32>{stored.config, T, threads}.run(stored, tokens, kv, selection);
    case FloatFormat::f16: return Forward<FloatFormat::f16>{stored.config, T, threads}.run(stored, tokens, kv, selection);
    case FloatFormat::bf16: return Forward<FloatFormat::bf16>{stored.config, T, threads}.run(stored, tokens, kv, selection);
  }
  return {};
}

}  // namespace kvfid::ref::native
