#pragma once
// The plain forward pass, generic over the scalar type, keeping every intermediate.
// float64 is the independent cross-check of the MPFR golden (forward_f64.h); x87
// extended precision (long double) is the more accurate witness the float64 error
// bound is tested against (f64_error_bound.h). Both instantiations run the same code
// in the same order, so the only difference between them is the unit roundoff.
//
// Semantics (the model's exact maths; every step below is one rounding per operation):
//   x = embedding[token] * embed_scale                      (Gemma 2; else no product)
//   per layer: h = x / sqrt(mean(x^2) + eps) * attn_norm
//              q = wq h (+bq), k = wk h (+bk), v = wv h (+bv), then RoPE on q and k
//              (latent attention, config.h's LatentAttention, in reference/mp/latent_attention.cpp's
//              order: q = wq h or wq RMSNorm(wq_a h); kv_a = wkv_a h; latent = RMSNorm(kv_a's first
//              kv_lora_rank) * kv_a_norm; kv = wkv_b latent; each head's k = (its nope keys of kv,
//              kv_a's last rope_dim), v = its v_head_dim values of kv; RoPE on the last rope_dim
//              of each q and k head only)
//              s_j = q.k_j / sqrt(d), d = score_scale_dim(); Gemma 2: s_j = cap tanh(s_j / cap)
//              causal (windowed) GQA softmax(s), attn = sum_j p_j v_j
//              a = wo attn (Gemma 2: a = RMSNorm(a) * post_attn_norm);  x += a
//              h2 = RMSNorm(x) * ffn_norm;  f = w2 (act(w1 h2) * (w3 h2)), act silu or gelu_tanh
//              (Gemma 2: f = RMSNorm(f) * post_ffn_norm);  x += f
//   logits = classifier (RMSNorm(x) * final_norm) (Gemma 2: logits = cap tanh(logits / cap))
// Every norm gain is the stored weight w, or 1 + w (rounded once) when norm_unit_offset.
// The trace holds all positions of one layer at once (prefill order); the values do
// not depend on that order because each position only reads positions <= itself.
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Dense>

#include "reference/golden/taps.h"
#include "reference/model/model.h"

namespace kvfid::ref {

template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class Scalar>
struct LayerTrace {
  RowMatrix<Scalar> x_in;                // [T, dim] residual stream entering the layer
  RowMatrix<Scalar> h;                   // [T, dim] RMSNorm(x_in) * attn_norm
  RowMatrix<Scalar> q_proj;              // [T, n_heads*head_dim] wq h + bq; Qwen3 only (else q_lin is it)
  RowMatrix<Scalar> k_proj;              // [T, n_kv_heads*head_dim] wk h + bk; Qwen3 only
  // Latent attention only (each empty otherwise; q_a and q_c also without a low-rank query):
  RowMatrix<Scalar> q_a;                 // [T, q_lora_rank] wq_a h
  RowMatrix<Scalar> q_c;                 // [T, q_lora_rank] RMSNorm(q_a) * q_a_norm, what wq reads
  RowMatrix<Scalar> kv_a;                // [T, kv_lora_rank + rope_dim] wkv_a h: the latent before its norm, k_pe before RoPE
  RowMatrix<Scalar> latent;              // [T, kv_lora_rank] RMSNorm(kv_a's first kv_lora_rank) * kv_a_norm
  RowMatrix<Scalar> kv;                  // [T, n_heads*(nope_dim + v_head_dim)] wkv_b latent: per head nope keys, values
  RowMatrix<Scalar> q_lin;               // [T, n_heads*head_dim] wq h + bq (Qwen3: each head RMSNorm'd), before RoPE
  RowMatrix<Scalar> k_lin;               // [T, n_kv_heads*head_dim] wk h + bk (Qwen3: likewise; latent: each head
                                         // its nope keys of kv, then kv_a's k_pe), before RoPE
  RowMatrix<Scalar> q;                   // [T, n_heads*head_dim] after RoPE
  RowMatrix<Scalar> k;                   // [T, n_kv_heads*head_dim] after RoPE
  RowMatrix<Scalar> v;                   // [T, n_kv_heads*v_head_dim]
  std::vector<RowMatrix<Scalar>> uncapped_scores;  // n_heads x [T, T] q.k/sqrt(d); empty unless attn_softcap
  std::vector<RowMatrix<Scalar>> scores; // n_heads x [T, T] q.k/sqrt(d) (soft-capped), zeros above the diagonal
  std::vector<RowMatrix<Scalar>> probs;  // n_heads x [T, T] causal softmax, zeros above the diagonal
  RowMatrix<Scalar> attn_out;            // [T, n_heads*v_head_dim]
  RowMatrix<Scalar> attn_proj;           // [T, dim] wo attn_out; sandwich_norms only
  RowMatrix<Scalar> attn_post;           // [T, dim] RMSNorm(attn_proj) * post_attn_norm; sandwich_norms only
  RowMatrix<Scalar> x_mid;               // [T, dim] x_in + wo attn_out (sandwich_norms: + attn_post)
  RowMatrix<Scalar> h2;                  // [T, dim] RMSNorm(x_mid) * ffn_norm
  RowMatrix<Scalar> gate;                // [T, hidden] w1 h2
  RowMatrix<Scalar> up;                  // [T, hidden] w3 h2
  RowMatrix<Scalar> act;                 // [T, hidden] silu(gate) or gelu_tanh(gate)
  RowMatrix<Scalar> mix;                 // [T, hidden] act * up
  RowMatrix<Scalar> ffn_proj;            // [T, dim] w2 mix; sandwich_norms only
  RowMatrix<Scalar> ffn_post;            // [T, dim] RMSNorm(ffn_proj) * post_ffn_norm; sandwich_norms only
  RowMatrix<Scalar> out;                 // [T, dim] x_mid + w2 mix (sandwich_norms: + ffn_post)
};

template <class Scalar>
struct ForwardTrace {
  int first_layer = 0;                   // layers[i] is model layer first_layer + i
  // rd = rope_head_dim(): head_dim, or latent attention's rope_dim.
  RowMatrix<Scalar> angle;               // [T, rd/2] RoPE angle t * theta^(-2i/rd)
  RowMatrix<Scalar> cos;                 // [T, rd/2]
  RowMatrix<Scalar> sin;                 // [T, rd/2]
  std::vector<LayerTrace<Scalar>> layers;
  RowMatrix<Scalar> final_in;            // [T, dim] residual stream after the last layer
  RowMatrix<Scalar> final_h;             // [T, dim] RMSNorm(final_in) * final_norm
  RowMatrix<Scalar> uncapped_logits;     // [T, vocab] classifier final_h; final_softcap only
  RowMatrix<Scalar> logits;              // [T, vocab] (soft-capped)
};

// A norm's gain as the forward multiplies by it: w, or 1 + w rounded once to Scalar when
// the config says norm_unit_offset (f64_error_bound.cpp accounts for that rounding).
template <class Scalar>
std::vector<Scalar> norm_gain(const ModelConfig& config, const std::vector<double>& w) {
  std::vector<Scalar> g(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) g[i] = config.norm_unit_offset ? Scalar(1) + Scalar(w[i]) : Scalar(w[i]);
  return g;
}

// GELU's tanh approximation 0.5 z (1 + tanh(C (z + A z^3))), C = sqrt(2/pi), A = 0.044715,
// every step rounded once in this order (the MPFR golden's order, reference/mp/swiglu.cpp);
// the steps are kept because f64_error_bound.cpp bounds their roundings from them.
// C and A are decimal literals the compiler rounds correctly to Scalar: relative error u.
template <class Scalar>
struct GeluTanhSteps {
  Scalar arg;    // C^ (z + A^ z^3), the tanh argument
  Scalar th;     // tanh(arg)
  Scalar value;  // (0.5 z) (1 + th)
};

template <class Scalar>
GeluTanhSteps<Scalar> gelu_tanh_steps(Scalar z) {
  // Digits from mpmath at 50 places; both literals are wider than long double.
  const Scalar c = std::is_same_v<Scalar, double> ? Scalar(0.79788456080286535587989211986876373695171726232987)
                                                  : Scalar(0.79788456080286535587989211986876373695171726232987L);
  const Scalar a = std::is_same_v<Scalar, double> ? Scalar(0.044715) : Scalar(0.044715L);
  GeluTanhSteps<Scalar> s;
  Scalar cube = z * z;
  cube = cube * z;
  s.arg = c * (z + a * cube);
  s.th = std::tanh(s.arg);
  s.value = (Scalar(0.5) * z) * (Scalar(1) + s.th);
  return s;
}

// The soft-cap cap * tanh(z / cap), rounded at each of its three steps.
template <class Scalar>
Scalar soft_cap(Scalar z, double cap) {
  return Scalar(cap) * std::tanh(z / Scalar(cap));
}

// The two dimensions of a head's rotated part (the whole head, or latent attention's
// last rope_dim, rd = rope_head_dim()) that RoPE pair i rotates together, counted from
// that part's start: (2i, 2i+1) when interleaved, (i, i + rd/2) for rotate_half.
inline std::pair<int, int> rope_pair(const ModelConfig& c, int i) {
  if (c.rope == RopeStyle::interleaved) return {2 * i, 2 * i + 1};
  return {i, i + c.rope_head_dim() / 2};
}

// The residual stream entering layer 0: embedding rows times embed_scale (one rounding
// when it is not 1). Throws InputError("forward", ...) for tokens out of range or past
// the context. Instantiated for double and long double.
template <class Scalar>
RowMatrix<Scalar> embed_tokens(const Model& model, const std::vector<int>& tokens);

// Throws InputError("forward", ...) for tokens out of range or past the context.
// Instantiated for double and long double.
template <class Scalar>
ForwardTrace<Scalar> trace_forward(const Model& model, const std::vector<int>& tokens);

// The rest of the forward from the residual stream entering `first_layer` ([T, dim],
// row t = position t), through the remaining layers and the classifier; first_layer
// may be n_layers (final norm and classifier only). Lets a comparison restart every
// layer from a reference's residual stream so that errors do not compound.
template <class Scalar>
ForwardTrace<Scalar> trace_forward_from(const Model& model, int first_layer, const RowMatrix<Scalar>& residual);

// The taps a trace holds: tap_specs without the layers before first_layer, in order.
std::vector<TapSpec> trace_tap_specs(const ModelConfig& config, int tokens, const TapSelection& selection, int first_layer);

// The tap values of a trace, in trace_tap_specs order, each row-major in its tap's shape.
template <class Scalar>
std::vector<std::vector<Scalar>> tap_values(const ForwardTrace<Scalar>& trace, const ModelConfig& config,
                                            const TapSelection& selection);

// Names, shapes and values together.
TapSet to_tap_set(const ModelConfig& config, int tokens, const TapSelection& selection, int first_layer,
                  std::vector<std::vector<double>> values);

}  // namespace kvfid::ref
