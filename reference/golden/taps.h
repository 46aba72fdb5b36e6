#pragma once
// A tap is a named intermediate tensor of the forward pass. Goldens, engine dumps and
// every comparison use the same names and shapes, so any engine that writes them in
// safetensors can be checked:
//   logits               [T, vocab]       row t = logits after tokens[0..t]
//   layers.L.q           [T, n_heads, head_dim]     after bias and RoPE
//   layers.L.k           [T, n_kv_heads, head_dim]  after bias and RoPE
//   layers.L.v           [T, n_kv_heads, head_dim]
//   layers.L.attn.probs  [n_heads, T, T]  causal softmax, zeros above the diagonal
//   layers.L.attn.out    [T, n_heads*head_dim]      before the output projection
//   layers.L.out         [T, dim]         residual stream after the layer
#include <cstdint>
#include <string>
#include <vector>

#include "reference/model/config.h"

namespace kvfid::ref {

enum class TapSelection { all, logits };

struct TapTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<double> values;  // row-major

  std::int64_t numel() const;
};

using TapSet = std::vector<TapTensor>;

struct TapSpec {
  std::string name;
  std::vector<std::int64_t> shape;
};

// The taps a forward over T tokens produces, in canonical order (logits first, then
// layer by layer in the order above).
std::vector<TapSpec> tap_specs(const ModelConfig& config, int tokens, TapSelection selection);

std::string tap_layer_name(int layer, const std::string& what);  // ("layers.3.", "attn.out")

// nullptr when absent.
const TapTensor* find_tap(const TapSet& taps, const std::string& name);

TapSelection tap_selection_from_string(const std::string& s, const std::string& source);
std::string to_string(TapSelection s);

}  // namespace kvfid::ref
