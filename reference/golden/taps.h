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

// Which taps a forward records. Logits are always recorded (every comparison and the
// golden format need them); beyond them: every layer tap, none, or those a list of
// names and globs matches (`*` any run of characters, `?` one), e.g.
// "logits,layers.0.*,layers.23.*". Parsed once from text; consumers ask wants(name).
class TapSelection {
 public:
  static const TapSelection all;
  static const TapSelection logits;
  // Non-empty patterns; throws std::invalid_argument otherwise. Text from a user goes
  // through tap_selection_from_string, which also refuses characters no tap name has.
  static TapSelection list(std::vector<std::string> patterns);

  bool wants(const std::string& tap_name) const;  // true for "logits"
  // False when no layers.* tap is wanted; may be true though none is (a glob that
  // matches only logits), so it only lets a producer skip work.
  bool wants_layer_taps() const;
  const std::vector<std::string>& patterns() const { return patterns_; }  // empty for all and logits
  // "all", "logits" or the comma-joined patterns: tap_selection_from_string reads it back.
  std::string text() const;

 private:
  enum class Kind { all, logits, list };
  TapSelection(Kind kind, std::vector<std::string> patterns) : kind_(kind), patterns_(std::move(patterns)) {}
  Kind kind_;
  std::vector<std::string> patterns_;  // Kind::list only
};

// Glob match of a whole tap name: `*` any run of characters (dots included), `?` one.
bool tap_glob_match(const std::string& pattern, const std::string& name);

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
// layer by layer in the order above), those `selection` wants.
std::vector<TapSpec> tap_specs(const ModelConfig& config, int tokens, const TapSelection& selection);

std::string tap_layer_name(int layer, const std::string& what);  // ("layers.3.", "attn.out")

// nullptr when absent.
const TapTensor* find_tap(const TapSet& taps, const std::string& name);

// "all", "logits" or a comma-separated list of tap names and globs. Throws
// InputError(source, ...) for an empty item or a character no tap name has.
TapSelection tap_selection_from_string(const std::string& s, const std::string& source);
std::string to_string(const TapSelection& s);
// Every pattern of a list must match at least one tap of `config`: a typo would
// otherwise silently record nothing. Throws InputError(source, ...) naming the pattern.
void check_tap_selection(const TapSelection& s, const ModelConfig& config, const std::string& source);

}  // namespace kvfid::ref
