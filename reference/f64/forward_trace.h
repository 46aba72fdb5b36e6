#pragma once
// The plain forward pass, generic over the scalar type, keeping every intermediate.
// float64 is the independent cross-check of the MPFR golden (forward_f64.h); x87
// extended precision (long double) is the more accurate witness the float64 error
// bound is tested against (f64_error_bound.h). Both instantiations run the same code
// in the same order, so the only difference between them is the unit roundoff.
//
// Semantics (the model's exact maths; every step below is one rounding per operation):
//   x = embedding[token]
//   per layer: h = x / sqrt(mean(x^2) + eps) * attn_norm
//              q = wq h (+bq), k = wk h (+bk), v = wv h (+bv), then RoPE on q and k
//              causal GQA softmax(q.k_j / sqrt(head_dim)), attn = sum_j p_j v_j
//              x += wo attn;  h2 = RMSNorm(x) * ffn_norm;  x += w2 (silu(w1 h2) * (w3 h2))
//   logits = classifier (RMSNorm(x) * final_norm)
// The trace holds all positions of one layer at once (prefill order); the values do
// not depend on that order because each position only reads positions <= itself.
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
  RowMatrix<Scalar> q_lin;               // [T, n_heads*head_dim] wq h + bq (Qwen3: each head RMSNorm'd), before RoPE
  RowMatrix<Scalar> k_lin;               // [T, n_kv_heads*head_dim] wk h + bk (Qwen3: likewise), before RoPE
  RowMatrix<Scalar> q;                   // [T, n_heads*head_dim] after RoPE
  RowMatrix<Scalar> k;                   // [T, n_kv_heads*head_dim] after RoPE
  RowMatrix<Scalar> v;                   // [T, n_kv_heads*head_dim]
  std::vector<RowMatrix<Scalar>> scores; // n_heads x [T, T] q.k/sqrt(head_dim), zeros above the diagonal
  std::vector<RowMatrix<Scalar>> probs;  // n_heads x [T, T] causal softmax, zeros above the diagonal
  RowMatrix<Scalar> attn_out;            // [T, n_heads*head_dim]
  RowMatrix<Scalar> x_mid;               // [T, dim] x_in + wo attn_out
  RowMatrix<Scalar> h2;                  // [T, dim] RMSNorm(x_mid) * ffn_norm
  RowMatrix<Scalar> gate;                // [T, hidden] w1 h2
  RowMatrix<Scalar> up;                  // [T, hidden] w3 h2
  RowMatrix<Scalar> act;                 // [T, hidden] silu(gate)
  RowMatrix<Scalar> mix;                 // [T, hidden] act * up
  RowMatrix<Scalar> out;                 // [T, dim] x_mid + w2 mix
};

template <class Scalar>
struct ForwardTrace {
  int first_layer = 0;                   // layers[i] is model layer first_layer + i
  RowMatrix<Scalar> angle;               // [T, head_dim/2] RoPE angle t * theta^(-2i/head_dim)
  RowMatrix<Scalar> cos;                 // [T, head_dim/2]
  RowMatrix<Scalar> sin;                 // [T, head_dim/2]
  std::vector<LayerTrace<Scalar>> layers;
  RowMatrix<Scalar> final_in;            // [T, dim] residual stream after the last layer
  RowMatrix<Scalar> final_h;             // [T, dim] RMSNorm(final_in) * final_norm
  RowMatrix<Scalar> logits;              // [T, vocab]
};

// The two dimensions of a head that RoPE pair i rotates together: (2i, 2i+1) when
// interleaved, (i, i + head_dim/2) for rotate_half.
inline std::pair<int, int> rope_pair(const ModelConfig& c, int i) {
  if (c.rope == RopeStyle::interleaved) return {2 * i, 2 * i + 1};
  return {i, i + c.head_dim / 2};
}

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
