#include "reference/f64/forward_f64.h"

#include <cmath>
#include <utility>

#include <gtest/gtest.h>

#include "reference/f64/f64_error_bound.h"
#include "reference/f64/forward_trace.h"
#include "reference/util/input_error.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

constexpr double u = kUnitRoundoff;
double gamma(double n) { return n * u / (1 - n * u); }

Model synthetic(const ModelConfig& config) { return make_synthetic_model(config, test::test_seed()); }

TEST(ForwardF64, TapsMatchTheSpecsAndAreFinite) {
  SCOPED_TRACE(test::seed_trace());
  for (const std::string& shape : synthetic_shape_names()) {
    SCOPED_TRACE(shape);
    const Model model = synthetic(synthetic_shape(shape));
    const std::vector<int> tokens = test::fixture_prompt("short");
    const TapSet taps = forward_f64(model, tokens, TapSelection::all);
    const auto specs = tap_specs(model.config, int(tokens.size()), TapSelection::all);
    ASSERT_EQ(taps.size(), specs.size());
    for (std::size_t i = 0; i < taps.size(); ++i) {
      EXPECT_EQ(taps[i].name, specs[i].name);
      EXPECT_EQ(taps[i].shape, specs[i].shape);
      ASSERT_EQ(std::int64_t(taps[i].values.size()), taps[i].numel());
      double max_abs = 0;
      for (double v : taps[i].values) {
        ASSERT_TRUE(std::isfinite(v)) << taps[i].name;
        max_abs = std::max(max_abs, std::fabs(v));
      }
      EXPECT_GT(max_abs, 0) << taps[i].name << " is all zero";
    }
    const TapSet logits_only = forward_f64(model, tokens, TapSelection::logits);
    ASSERT_EQ(logits_only.size(), 1u);
    EXPECT_EQ(logits_only[0].values, find_tap(taps, "logits")->values);
  }
}

TEST(ForwardF64, RejectsTokensOutOfRange) {
  const Model model = synthetic(synthetic_shape("tiny-mqa"));
  EXPECT_THROW(forward_f64(model, {1, 128}, TapSelection::all), InputError);
  EXPECT_THROW(forward_f64(model, {}, TapSelection::all), InputError);
}

// At position 0 every RoPE angle is 0, so q and k are the projections unchanged:
// q = wq h (+ bq), compared with a plain dot product of the same h. Both sums of
// `dim` products (+ bias) err by at most gamma_{dim+1} (sum |w h| + |b|) from the exact
// one (Higham 3.1), so they differ by at most twice that.
TEST(ForwardF64, RopeAtPositionZeroIsTheIdentity) {
  SCOPED_TRACE(test::seed_trace());
  for (const char* shape : {"tiny-llama", "tiny-qwen2"}) {
    SCOPED_TRACE(shape);
    const Model model = synthetic(synthetic_shape(shape));
    const ForwardTrace<double> tr = trace_forward<double>(model, test::fixture_prompt("short"));
    for (std::size_t l = 0; l < tr.layers.size(); ++l) {
      const LayerTrace<double>& L = tr.layers[l];
      EXPECT_EQ(L.q.row(0), L.q_lin.row(0)) << "layer " << l;
      EXPECT_EQ(L.k.row(0), L.k_lin.row(0)) << "layer " << l;
      const LayerWeights& w = model.layers[l];
      for (int o = 0; o < w.wq.rows; ++o) {
        double dot = w.bq.empty() ? 0 : w.bq[o], abs_sum = w.bq.empty() ? 0 : std::fabs(w.bq[o]);
        for (int i = 0; i < w.wq.cols; ++i) {
          dot += w.wq.at(o, i) * L.h(0, i);
          abs_sum += std::fabs(w.wq.at(o, i) * L.h(0, i));
        }
        EXPECT_NEAR(L.q(0, o), dot, 2 * gamma(w.wq.cols + 1) * abs_sum) << "layer " << l << " row " << o;
      }
    }
  }
}

// Pair i at position t turns by t * theta^(-2i/head_dim), on dimensions (2i, 2i+1) when
// interleaved and (i, i + head_dim/2) for rotate_half. The expected rotation is taken in
// long double from the float64 pre-RoPE values. Tolerance per the error model in
// f64_error_bound.h: the angle errs by at most t (ln theta + 2 kLibmUlps + 2) u, cos and
// sin by 2 kLibmUlps u more, the rotation by gamma_2; all times |a| + |b|.
double rope_tolerance(double a, double b, int t, double theta) {
  return (std::fabs(a) + std::fabs(b)) * ((t * (std::log(theta) + 2 * kLibmUlps + 2) + 2 * kLibmUlps) * u + gamma(2));
}

TEST(ForwardF64, RopeRotatesTheDocumentedPairs) {
  SCOPED_TRACE(test::seed_trace());
  for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::rotate_half}) {
    SCOPED_TRACE(to_string(style));
    ModelConfig c = synthetic_shape("tiny-llama");
    c.rope = style;
    const Model model = synthetic(c);
    const ForwardTrace<double> tr = trace_forward<double>(model, test::fixture_prompt("short"));
    const LayerTrace<double>& L = tr.layers[0];
    for (int t : {1, 5})
      for (int h = 0; h < c.n_heads; ++h)
        for (int i = 0; i < c.head_dim / 2; ++i) {
          const int ia = h * c.head_dim + (style == RopeStyle::interleaved ? 2 * i : i);
          const int ib = h * c.head_dim + (style == RopeStyle::interleaved ? 2 * i + 1 : i + c.head_dim / 2);
          const long double angle = t * std::pow((long double)c.rope_theta, -(long double)(2 * i) / c.head_dim);
          const long double a = L.q_lin(t, ia), b = L.q_lin(t, ib);
          const double tol = rope_tolerance(L.q_lin(t, ia), L.q_lin(t, ib), t, c.rope_theta);
          EXPECT_NEAR(L.q(t, ia), double(a * std::cos(angle) - b * std::sin(angle)), tol) << t << " " << h << " " << i;
          EXPECT_NEAR(L.q(t, ib), double(a * std::sin(angle) + b * std::cos(angle)), tol) << t << " " << h << " " << i;
        }
  }
}

// Latent attention turns the last rope_dim of each q and k head only, pair i (interleaved)
// by t * theta^(-2i/rope_dim): the nope part leaves RoPE bit for bit, the rope part as in
// RopeRotatesTheDocumentedPairs (same tolerance, the pairs of width rope_dim). Every key
// head holds the one k_pe: kv_a's last rope_dim before RoPE, equal in every head after.
TEST(ForwardF64, LatentRopeTurnsTheRopePartOnly) {
  SCOPED_TRACE(test::seed_trace());
  const ModelConfig c = synthetic_shape("tiny-mla");
  const int hd = c.head_dim, nope = c.nope_dim(), rd = c.mla.rope_dim;
  ASSERT_GT(nope, 0);
  ASSERT_EQ(c.rope, RopeStyle::interleaved);
  const ForwardTrace<double> tr = trace_forward<double>(synthetic(c), test::fixture_prompt("short"));
  const LayerTrace<double>& L = tr.layers[0];
  for (int t : {1, 5})
    for (int h = 0; h < c.n_heads; ++h) {
      for (int d = 0; d < nope; ++d) {
        EXPECT_EQ(L.q(t, h * hd + d), L.q_lin(t, h * hd + d)) << t << " " << h << " " << d;
        EXPECT_EQ(L.k(t, h * hd + d), L.k_lin(t, h * hd + d)) << t << " " << h << " " << d;
      }
      for (int d = 0; d < rd; ++d) {
        EXPECT_EQ(L.k_lin(t, h * hd + nope + d), L.kv_a(t, c.mla.kv_lora_rank + d)) << t << " " << h << " " << d;
        EXPECT_EQ(L.k(t, h * hd + nope + d), L.k(t, nope + d)) << t << " " << h << " " << d;
      }
      for (const auto& [lin, out] : {std::pair{&L.q_lin, &L.q}, std::pair{&L.k_lin, &L.k}})
        for (int i = 0; i < rd / 2; ++i) {
          const int ia = h * hd + nope + 2 * i, ib = ia + 1;
          const long double angle = t * std::pow((long double)c.rope_theta, -(long double)(2 * i) / rd);
          const long double a = (*lin)(t, ia), b = (*lin)(t, ib);
          const double tol = rope_tolerance((*lin)(t, ia), (*lin)(t, ib), t, c.rope_theta);
          EXPECT_NEAR((*out)(t, ia), double(a * std::cos(angle) - b * std::sin(angle)), tol) << t << " " << h << " " << i;
          EXPECT_NEAR((*out)(t, ib), double(a * std::sin(angle) + b * std::cos(angle)), tol) << t << " " << h << " " << i;
        }
    }
}

// With wk = 0 every key is zero, every score is 0, and the softmax is exactly uniform:
// exp(0) = 1, the sum t+1 is exact, and 1/(t+1) is one correctly rounded division.
// The output is then the mean of the values: sum_j fl(1/(t+1)) v_j within
// gamma_{t+2} sum |v_j| / (t+1) of the exact mean (t+1 products and sums, plus the
// rounding of 1/(t+1)), compared with a long double mean (error negligible).
TEST(ForwardF64, EqualScoresGiveUniformAttention) {
  SCOPED_TRACE(test::seed_trace());
  const ModelConfig c = synthetic_shape("tiny-llama");
  Model model = synthetic(c);
  for (double& w : model.layers[0].wk.mutable_values()) w = 0;
  const ForwardTrace<double> tr = trace_forward<double>(model, test::fixture_prompt("medium"));
  const LayerTrace<double>& L = tr.layers[0];
  const int T = int(L.q.rows());
  for (int h = 0; h < c.n_heads; ++h)
    for (int t = 0; t < T; ++t) {
      for (int j = 0; j < T; ++j) ASSERT_EQ(L.probs[h](t, j), j <= t ? 1.0 / (t + 1) : 0.0) << h << " " << t << " " << j;
      const int kv = c.kv_head_of(h);
      for (int d = 0; d < c.head_dim; ++d) {
        long double mean = 0, abs_sum = 0;
        for (int j = 0; j <= t; ++j) {
          mean += L.v(j, kv * c.head_dim + d);
          abs_sum += std::fabs(L.v(j, kv * c.head_dim + d));
        }
        EXPECT_NEAR(L.attn_out(t, h * c.head_dim + d), double(mean / (t + 1)),
                    double(gamma(t + 2) * abs_sum / (t + 1)));
      }
    }
}

// At position 0 a query sees one key: its probability is exactly 1 and the output is
// exactly that token's value, from the KV head the query head is grouped with (latent
// attention: its own head, values v_head_dim wide, narrower than its keys).
TEST(ForwardF64, AttentionOverOneTokenReturnsItsValue) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig gqa = synthetic_shape("tiny-llama");
  gqa.n_kv_heads = 2;  // heads 0, 1 read KV head 0; heads 2, 3 read KV head 1
  for (const ModelConfig& c : {gqa, synthetic_shape("tiny-qwen2"), synthetic_shape("tiny-mqa"), synthetic_shape("tiny-mla")}) {
    SCOPED_TRACE(std::to_string(c.n_heads) + ":" + std::to_string(c.n_kv_heads));
    const int vd = c.v_head_dim();
    const ForwardTrace<double> tr = trace_forward<double>(synthetic(c), test::fixture_prompt("short"));
    for (const LayerTrace<double>& L : tr.layers) {
      ASSERT_EQ(L.attn_out.cols(), c.attn_out_dim());
      for (int h = 0; h < c.n_heads; ++h) {
        EXPECT_EQ(L.probs[h](0, 0), 1.0);
        EXPECT_EQ(L.attn_out.row(0).segment(h * vd, vd), L.v.row(0).segment(c.kv_head_of(h) * vd, vd)) << "head " << h;
      }
    }
  }
}

// A constant vector c normalizes to c / sqrt(c^2 + eps) in every component. With unit
// gains and wq = I the q tap at position 0 is that value; c = 0.01 makes eps = 1e-5 a
// tenth of the mean square, so misplacing eps shows. The computed value is within
// gamma_{dim+6} (relative) of it (f64_error_bound.h, RMSNorm).
TEST(ForwardF64, RmsNormOfAConstantVector) {
  const ModelConfig c = synthetic_shape("tiny-llama");  // q_dim == dim
  ASSERT_EQ(c.q_dim(), c.dim);
  Model model = synthetic(c);
  constexpr double kConstant = 0.01;
  const int token = 7;
  for (int i = 0; i < c.dim; ++i) model.embedding.element(token, i) = kConstant;
  LayerWeights& w = model.layers[0];
  w.attn_norm.assign(c.dim, 1.0);
  w.wq = Matrix(c.dim, c.dim);
  for (int i = 0; i < c.dim; ++i) w.wq.element(i, i) = 1;
  const TapSet taps = forward_f64(model, {token}, TapSelection::all);
  const long double expected = kConstant / std::sqrt((long double)kConstant * kConstant + c.rms_norm_eps);
  for (double q : find_tap(taps, "layers.0.q")->values)
    EXPECT_NEAR(q, double(expected), gamma(c.dim + 6) * double(expected));
}

// Gemma 2's gains are 1 + w in every norm (attention, FFN, both post-norms, final): the
// same model without the offset, its stored gains replaced by float64's 1 + w, gives
// the same bits in every tap; a norm that skipped the offset would scale by w ~ 0.1.
// The embedding rows enter times embed_scale, here an exact product (8.5 = 17/2).
TEST(ForwardF64, Gemma2GainsAreOnePlusTheWeight) {
  SCOPED_TRACE(test::seed_trace());
  const Model gemma = synthetic(synthetic_shape("tiny-gemma2"));
  ASSERT_TRUE(gemma.config.norm_unit_offset);
  Model plain = gemma;
  plain.config.norm_unit_offset = false;
  auto offset = [](std::vector<double>& w) {
    for (double& x : w) x = 1 + x;
  };
  for (LayerWeights& w : plain.layers) {
    offset(w.attn_norm), offset(w.ffn_norm), offset(w.post_attn_norm), offset(w.post_ffn_norm);
  }
  offset(plain.final_norm);
  const std::vector<int> tokens = test::fixture_prompt("short");
  const TapSet a = forward_f64(gemma, tokens, TapSelection::all), b = forward_f64(plain, tokens, TapSelection::all);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].values, b[i].values) << a[i].name;

  const ForwardTrace<double> tr = trace_forward<double>(gemma, tokens);
  for (std::size_t t = 0; t < tokens.size(); ++t)
    for (int i = 0; i < gemma.config.dim; ++i)
      ASSERT_EQ(tr.layers[0].x_in(t, i), gemma.embedding.at(tokens[t], i) * gemma.config.embed_scale);
}

}  // namespace
}  // namespace kvfid::ref
