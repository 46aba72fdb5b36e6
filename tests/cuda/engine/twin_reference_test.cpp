// The twin computes the Llama/Qwen2 forward: its logits agree, to FP32 rounding, with a
// plain float64 forward written here from the model description (catches a wrong RoPE
// pairing, GQA mapping, norm or activation, which the bit-exact tests cannot); and
// Gemma 2's block (embed scale, 1 + w gains, post-norms, tanh GELU, score scale, soft-caps,
// the window on even layers) likewise, from transformers' Gemma2 formulas.
#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "cuda/engine/engine_forward.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
namespace {

// Measured baseline, of the logits' scale (seeds 1, 2, 3, 99, 12345 and the default):
// 1.8e-7 to 3.1e-7 over 20 tokens, 2.3e-7 to 7.1e-7 over 300 tokens, as expected of
// FP32 rounding (2^-24 = 6e-8) accumulated over two layers; the by-length split mode's
// 32-key splits (300 tokens decoded one by one) 2.2e-7 to 6.7e-7 over the same seeds; Gemma 2's block
// (tiny-gemma2's shape) 2.0e-7 to 4.7e-7 over seeds 1, 2, 3, 99, 12345. A formula error (wrong
// pairing, head, norm or split fold) moves logits by O(1) of their scale. 1e-5 leaves
// 14x margin over the worst baseline and five orders below a real error.
constexpr double kMaxRelativeLogitError = 1e-5;

std::vector<double> matvec(const Matrix& w, const std::vector<double>& x) {
  std::vector<double> y(w.rows, 0.0);
  for (int r = 0; r < w.rows; ++r)
    for (int c = 0; c < w.cols; ++c) y[r] += w.at(r, c) * x[c];
  return y;
}

// Gemma's gains are 1 + w (unit_offset).
std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<double>& w, double eps,
                            bool unit_offset = false) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * (unit_offset ? 1 + w[i] : w[i]);
  return y;
}

double capped(double z, double cap) { return cap > 0 ? cap * std::tanh(z / cap) : z; }

double activation(double z, Activation a) {
  if (a == Activation::silu) return z / (1 + std::exp(-z));
  const double c = std::sqrt(2 / std::acos(-1.0));
  return 0.5 * z * (1 + std::tanh(c * (z + 0.044715 * z * z * z)));
}

void rope(std::vector<double>& v, int heads, const ModelConfig& c, int pos) {
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < c.head_dim / 2; ++i) {
      const int a = c.rope == RopeStyle::interleaved ? 2 * i : i;
      const int b = c.rope == RopeStyle::interleaved ? 2 * i + 1 : i + c.head_dim / 2;
      const double angle = pos * std::pow(c.rope_theta, -2.0 * i / c.head_dim);
      const double x = v[h * c.head_dim + a], y = v[h * c.head_dim + b];
      v[h * c.head_dim + a] = x * std::cos(angle) - y * std::sin(angle);
      v[h * c.head_dim + b] = x * std::sin(angle) + y * std::cos(angle);
    }
}

std::vector<std::vector<double>> reference_logits(const Model& m, const std::vector<int>& tokens) {
  const ModelConfig& c = m.config;
  const int T = int(tokens.size()), hd = c.head_dim;
  std::vector<std::vector<double>> x(T);
  const bool g = c.norm_unit_offset;
  for (int t = 0; t < T; ++t) {
    x[t].resize(std::size_t(c.dim));
    m.embedding.decode_row(tokens[t], x[t].data());
    for (double& e : x[t]) e *= c.embed_scale;
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = m.layers[std::size_t(l)];
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (int t = 0; t < T; ++t) {
      const auto xn = rmsnorm(x[t], w.attn_norm, c.rms_norm_eps, g);
      q[t] = matvec(w.wq, xn), k[t] = matvec(w.wk, xn), v[t] = matvec(w.wv, xn);
      for (std::size_t i = 0; i < w.bq.size(); ++i) q[t][i] += w.bq[i];
      for (std::size_t i = 0; i < w.bk.size(); ++i) k[t][i] += w.bk[i];
      for (std::size_t i = 0; i < w.bv.size(); ++i) v[t][i] += w.bv[i];
      rope(q[t], c.n_heads, c, t);
      rope(k[t], c.n_kv_heads, c, t);
    }
    for (int t = 0; t < T; ++t) {
      std::vector<double> att(c.q_dim(), 0.0);
      for (int h = 0; h < c.n_heads; ++h) {
        const int kvh = h / (c.n_heads / c.n_kv_heads);
        // Keys t - W + 1 .. t on a windowed layer (Mistral, Gemma 2's even layers).
        const int first = c.window_of(l) > 0 ? std::max(0, t - c.window_of(l) + 1) : 0;
        std::vector<double> s(t + 1 - first);
        for (int j = first; j <= t; ++j) {
          double d = 0;
          for (int i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[j][kvh * hd + i];
          s[j - first] = capped(d / std::sqrt(c.score_scale_dim()), c.attn_softcap);
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int j = first; j <= t; ++j)
          for (int i = 0; i < hd; ++i) att[h * hd + i] += s[j - first] / sum * v[j][kvh * hd + i];
      }
      auto o = matvec(w.wo, att);
      if (c.sandwich_norms) o = rmsnorm(o, w.post_attn_norm, c.rms_norm_eps, g);
      for (int i = 0; i < c.dim; ++i) x[t][i] += o[i];
      const auto xn = rmsnorm(x[t], w.ffn_norm, c.rms_norm_eps, g);
      auto gate = matvec(w.w1, xn);
      const auto u = matvec(w.w3, xn);
      for (int i = 0; i < c.hidden; ++i) gate[i] = activation(gate[i], c.activation) * u[i];
      auto d = matvec(w.w2, gate);
      if (c.sandwich_norms) d = rmsnorm(d, w.post_ffn_norm, c.rms_norm_eps, g);
      for (int i = 0; i < c.dim; ++i) x[t][i] += d[i];
    }
  }
  std::vector<std::vector<double>> logits(T);
  for (int t = 0; t < T; ++t) {
    logits[t] = matvec(m.classifier, rmsnorm(x[t], m.final_norm, c.rms_norm_eps, g));
    for (double& z : logits[t]) z = capped(z, c.final_softcap);
  }
  return logits;
}

// 20 tokens fit in one attention split; 300 cross the 256-key split boundary, so the
// fold of splits (attention_math.h) is checked against the plain softmax too. The
// by-length split mode decodes token by token (one-row steps, where it cuts 300 keys
// into 32-key splits: split_keys.h), under the same bound: a split size changes only
// the FP32 rounding of the fold, not the function.
class EngineTwinReference : public ::testing::TestWithParam<std::tuple<int, SplitMode>> {};

// max |twin - float64| / max |logit| over the tokens' logits.
double worst_relative_logit_error(const Model& m, const std::vector<int>& tokens, SplitMode split) {
  EngineOptions o;
  o.taps = TapSelection::logits;
  o.split = split;
  o.chunk = split == SplitMode::by_length ? 1 : 0;
  const TapSet taps = engine_forward(m, tokens, o);
  const auto ref = reference_logits(m, tokens);
  double scale = 0, worst = 0;
  for (const auto& row : ref)
    for (double v : row) scale = std::max(scale, std::fabs(v));
  EXPECT_GT(scale, 0);
  for (int t = 0; t < int(tokens.size()); ++t)
    for (int i = 0; i < m.config.vocab; ++i) {
      const double got = taps[0].values[std::size_t(t) * m.config.vocab + i];
      EXPECT_TRUE(std::isfinite(got));
      worst = std::max(worst, std::fabs(got - ref[t][i]) / scale);
    }
  return worst;
}

TEST_P(EngineTwinReference, LogitsMatchFloat64Forward) {
  SCOPED_TRACE(test::seed_trace());
  for (RopeStyle rope : {RopeStyle::interleaved, RopeStyle::rotate_half}) {
    const Model m = test::tiny_model(test::tiny_config(4, 2, 18, rope, rope == RopeStyle::rotate_half), test::test_seed());
    const auto [count, split] = GetParam();
    const double worst = worst_relative_logit_error(m, test::prompt_tokens(count, m.config.vocab, 11), split);
    EXPECT_LE(worst, kMaxRelativeLogitError) << to_string(rope);
    std::printf("%s, %d tokens, %s split: max |twin - float64| / max|logit| = %.3g\n", to_string(rope).c_str(), count,
                to_string(split).c_str(), worst);
  }
}

// Gemma 2's block (tiny-gemma2's shape: caps of 4 and 3 that bind, a window of 5 on layer
// 0), under the same bound: its steps add FP32 roundings, not a different function.
TEST_P(EngineTwinReference, Gemma2LogitsMatchFloat64Forward) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = synthetic_shape("tiny-gemma2");
  c.max_seq = 512;  // 300 tokens: the global layer crosses the 256-key split
  const Model m = make_synthetic_model(c, test::test_seed());
  const auto [count, split] = GetParam();
  const double worst = worst_relative_logit_error(m, test::prompt_tokens(count, m.config.vocab, 11), split);
  EXPECT_LE(worst, kMaxRelativeLogitError);
  std::printf("gemma2, %d tokens, %s split: max |twin - float64| / max|logit| = %.3g\n", count, to_string(split).c_str(),
              worst);
}

INSTANTIATE_TEST_SUITE_P(Tokens, EngineTwinReference,
                         ::testing::Combine(::testing::Values(20, 300),
                                            ::testing::Values(SplitMode::invariant, SplitMode::by_length)),
                         [](const auto& info) {
                           return std::to_string(std::get<0>(info.param)) + "_" +
                                  (std::get<1>(info.param) == SplitMode::invariant ? "invariant" : "by_length");
                         });

}  // namespace
}  // namespace kvfid::engine
