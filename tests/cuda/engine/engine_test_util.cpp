#include "tests/cuda/engine/engine_test_util.h"

#include <cmath>
#include <sstream>

#include "reference/synth/synthetic_model.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

ModelConfig tiny_config(int n_heads, int n_kv_heads, int head_dim, RopeStyle rope, bool bias, int max_seq) {
  ModelConfig c;
  c.arch = bias ? Arch::qwen2 : Arch::llama;
  c.vocab = 96;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.dim = n_heads * head_dim;
  c.n_layers = 2;
  c.hidden = 2 * c.dim + 12;  // not a multiple of 8: exercises the matvec tail
  c.max_seq = max_seq;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = bias ? 1e6 : 1e4;
  c.rope = rope;
  c.tied_classifier = !bias;
  c.qkv_bias = bias;
  return c;
}

Model tiny_model(const ModelConfig& config, std::uint64_t seed) { return make_synthetic_model(config, seed); }

std::vector<int> prompt_tokens(int count, int vocab, std::uint64_t seed) {
  std::vector<int> t(count);
  std::uint64_t s = seed;
  for (int& x : t) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = int((s >> 33) % std::uint64_t(vocab));
  }
  return t;
}

std::string bitwise_difference(const TapSet& a, const TapSet& b) {
  if (a.size() != b.size()) return "tap counts differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape) return "tap " + a[i].name + " vs " + b[i].name;
    for (std::size_t j = 0; j < a[i].values.size(); ++j) {
      const double x = a[i].values[j], y = b[i].values[j];
      if (!std::isfinite(x) || !std::isfinite(y) || x != y || std::signbit(x) != std::signbit(y)) {
        std::ostringstream o;
        o.precision(9);
        o << a[i].name << "[" << j << "]: " << x << " vs " << y;
        return o.str();
      }
    }
  }
  return "";
}

std::string gross_failure(const TapSet& taps) {
  for (const TapTensor& t : taps) {
    bool nonzero = false;
    for (double v : t.values) {
      if (!std::isfinite(v)) return t.name + " has a non-finite value";
      nonzero |= v != 0;
    }
    if (!nonzero) return t.name + " is all zeros";
  }
  return "";
}

}  // namespace kvfid::test
