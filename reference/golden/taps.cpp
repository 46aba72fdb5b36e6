#include "reference/golden/taps.h"

#include <stdexcept>

#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {

bool pattern_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
         ch == '*' || ch == '?';
}

// Why `pattern` is not a valid list item, or empty when it is.
std::string pattern_problem(const std::string& pattern) {
  if (pattern.empty()) return "an empty item";
  for (char ch : pattern)
    if (!pattern_char(ch)) return "item '" + pattern + "' has a character no tap name has";
  return {};
}

}  // namespace

const TapSelection TapSelection::all{TapSelection::Kind::all, {}};
const TapSelection TapSelection::logits{TapSelection::Kind::logits, {}};

TapSelection TapSelection::list(std::vector<std::string> patterns) {
  if (patterns.empty()) throw std::invalid_argument("TapSelection::list: no patterns");
  for (const std::string& p : patterns)
    if (p.empty()) throw std::invalid_argument("TapSelection::list: an empty pattern");
  return TapSelection(Kind::list, std::move(patterns));
}

bool TapSelection::wants(const std::string& tap_name) const {
  if (tap_name == "logits" || kind_ == Kind::all) return true;
  for (const std::string& p : patterns_)
    if (tap_glob_match(p, tap_name)) return true;
  return false;
}

bool TapSelection::wants_layer_taps() const {
  if (kind_ != Kind::list) return kind_ == Kind::all;
  for (const std::string& p : patterns_)
    if (p != "logits") return true;
  return false;
}

std::string TapSelection::text() const {
  if (kind_ == Kind::all) return "all";
  if (kind_ == Kind::logits) return "logits";
  std::string out;
  for (const std::string& p : patterns_) out += (out.empty() ? "" : ",") + p;
  return out;
}

bool tap_glob_match(const std::string& pattern, const std::string& name) {
  // Iterative wildcard match with one backtrack point: linear in practice, and no
  // recursion a hostile pattern could deepen.
  std::size_t p = 0, n = 0, star = std::string::npos, resume = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p, ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++, resume = n;
    } else if (star != std::string::npos) {
      p = star + 1, n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::int64_t TapTensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string tap_layer_name(int layer, const std::string& what) {
  return "layers." + std::to_string(layer) + "." + what;
}

std::vector<TapSpec> tap_specs(const ModelConfig& c, int tokens, const TapSelection& selection) {
  const std::int64_t T = tokens;
  std::vector<TapSpec> specs = {{"logits", {T, c.vocab}}};
  if (!selection.wants_layer_taps()) return specs;
  for (int l = 0; l < c.n_layers; ++l) {
    for (TapSpec s : {TapSpec{tap_layer_name(l, "q"), {T, c.n_heads, c.head_dim}},
                      TapSpec{tap_layer_name(l, "k"), {T, c.n_kv_heads, c.head_dim}},
                      TapSpec{tap_layer_name(l, "v"), {T, c.n_kv_heads, c.v_head_dim()}},
                      TapSpec{tap_layer_name(l, "attn.probs"), {c.n_heads, T, T}},
                      TapSpec{tap_layer_name(l, "attn.out"), {T, c.attn_out_dim()}},
                      TapSpec{tap_layer_name(l, "out"), {T, c.dim}}})
      if (selection.wants(s.name)) specs.push_back(std::move(s));
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
  std::vector<std::string> patterns;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = s.find(',', begin);
    patterns.push_back(s.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin));
    if (const std::string problem = pattern_problem(patterns.back()); !problem.empty())
      throw InputError(source, "tap list '" + s + "' has " + problem +
                                   " (expected all, logits, or comma-separated tap names and globs such as "
                                   "logits,layers.0.*)");
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return TapSelection::list(std::move(patterns));
}

std::string to_string(const TapSelection& s) { return s.text(); }

void check_tap_selection(const TapSelection& s, const ModelConfig& config, const std::string& source) {
  const std::vector<TapSpec> every = tap_specs(config, 1, TapSelection::all);
  for (const std::string& pattern : s.patterns()) {
    bool matched = false;
    for (const TapSpec& spec : every) matched = matched || tap_glob_match(pattern, spec.name);
    if (!matched)
      throw InputError(source, "'" + pattern + "' matches no tap of this model (taps: logits and layers.L.{q, k, v, "
                                   "attn.probs, attn.out, out} for L in 0.." + std::to_string(config.n_layers - 1) + ")");
  }
}

}  // namespace kvfid::ref
