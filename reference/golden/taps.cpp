#include "reference/golden/taps.h"

#include "reference/util/input_error.h"

namespace kvfid::ref {

std::int64_t TapTensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string tap_layer_name(int layer, const std::string& what) {
  return "layers." + std::to_string(layer) + "." + what;
}

std::vector<TapSpec> tap_specs(const ModelConfig& c, int tokens, TapSelection selection) {
  const std::int64_t T = tokens;
  std::vector<TapSpec> specs = {{"logits", {T, c.vocab}}};
  if (selection == TapSelection::logits) return specs;
  for (int l = 0; l < c.n_layers; ++l) {
    specs.push_back({tap_layer_name(l, "q"), {T, c.n_heads, c.head_dim}});
    specs.push_back({tap_layer_name(l, "k"), {T, c.n_kv_heads, c.head_dim}});
    specs.push_back({tap_layer_name(l, "v"), {T, c.n_kv_heads, c.head_dim}});
    specs.push_back({tap_layer_name(l, "attn.probs"), {c.n_heads, T, T}});
    specs.push_back({tap_layer_name(l, "attn.out"), {T, c.q_dim()}});
    specs.push_back({tap_layer_name(l, "out"), {T, c.dim}});
  }
  return specs;
}

const TapTensor* find_tap(const TapSet& taps, const std::string& name) {
  for (const auto& t : taps)
    if (t.name == name) return &t;
  return nullptr;
}

TapSelection tap_selection_from_string(const std::string& s, const std::string& source) {
  if (s == "all") return TapSelection::all;
  if (s == "logits") return TapSelection::logits;
  throw InputError(source, "unknown tap selection '" + s + "' (expected all or logits)");
}

std::string to_string(TapSelection s) { return s == TapSelection::all ? "all" : "logits"; }

}  // namespace kvfid::ref
