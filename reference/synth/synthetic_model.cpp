#include "reference/synth/synthetic_model.h"

#include <cmath>

#include "reference/formats/minifloat.h"
#include "reference/io/input_error.h"

namespace kvfid {

namespace {

// SplitMix64: a counter-based stream, so each tensor draws from its own substream.
struct Stream {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1), exact
  // Irwin-Hall of 4 uniforms, centred and scaled to unit variance: bell-shaped with
  // bounded support (|x| < 3.47), and no libm call, hence portable bits.
  double normalish() {
    double s = uniform() + uniform() + uniform() + uniform() - 2.0;
    return s * 1.7320508075688772;  // sqrt(3): var of the sum is 4/12
  }
};

double store(double x, SynthPrecision p) {
  switch (p) {
    case SynthPrecision::f32: return double(float(x));
    case SynthPrecision::f16: return minifloat_round(x, kFp16);
    case SynthPrecision::bf16: return minifloat_round(x, kBf16);
  }
  return x;
}

class Generator {
 public:
  Generator(std::uint64_t seed, SynthPrecision p) : seed_(seed), precision_(p) {}

  // Each call opens a fresh substream keyed by (seed, tensor index).
  Matrix matrix(int rows, int cols, double scale) {
    Matrix m(rows, cols);
    Stream s = stream();
    for (double& v : m.mutable_values()) v = store(scale * s.normalish(), precision_);
    return m;
  }
  std::vector<double> vector(int n, double mean, double scale) {
    std::vector<double> v(n);
    Stream s = stream();
    for (double& x : v) x = store(mean + scale * s.normalish(), precision_);
    return v;
  }
  double store_value(double x) const { return store(x, precision_); }

 private:
  Stream stream() { return Stream{seed_ * 0x2545F4914F6CDD1Dull + 0x9E37ull * ++counter_}; }
  std::uint64_t seed_;
  std::uint64_t counter_ = 0;
  SynthPrecision precision_;
};

}  // namespace

Model make_synthetic_model(const ModelConfig& c, std::uint64_t seed, const SynthOptions& o) {
  c.validate("synthetic model");
  Generator g(seed, o.precision);
  Model m;
  m.config = c;
  m.source = "synthetic(seed=" + std::to_string(seed) + ")";
  // Projections scaled by 1/sqrt(fan_in) keep activations O(1), as trained models do.
  const double in_scale = 1.0 / std::sqrt(double(c.dim));
  const double hidden_scale = 1.0 / std::sqrt(double(c.hidden));
  const double attn_scale = 1.0 / std::sqrt(double(c.q_dim()));

  m.embedding = g.matrix(c.vocab, c.dim, 1.0);
  for (int t = 0; t < c.vocab; ++t)
    for (int d = 0; d < o.massive_dims && d < c.dim; ++d) {
      // Spread the massive dimensions over the width rather than at index 0.
      const int dim = (d * 37 + 5) % c.dim;
      m.embedding.element(t, dim) = g.store_value(m.embedding.at(t, dim) * o.massive_scale);
    }

  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    w.attn_norm = g.vector(c.dim, 1.0, 0.1);
    w.wq = g.matrix(c.q_dim(), c.dim, in_scale);
    w.wk = g.matrix(c.kv_dim(), c.dim, in_scale);
    w.wv = g.matrix(c.kv_dim(), c.dim, in_scale);
    for (int h = 0; h < c.n_kv_heads; ++h)
      for (int j = 0; j < o.k_outlier_channels && j < c.head_dim; ++j) {
        const int row = h * c.head_dim + (j * 5 + 3 + l) % c.head_dim;
        for (int col = 0; col < c.dim; ++col) w.wk.element(row, col) = g.store_value(w.wk.at(row, col) * o.k_outlier_scale);
      }
    if (c.qkv_bias) {
      w.bq = g.vector(c.q_dim(), 0.0, 0.5);
      w.bk = g.vector(c.kv_dim(), 0.0, 0.5);
      w.bv = g.vector(c.kv_dim(), 0.0, 0.1);
    }
    w.wo = g.matrix(c.dim, c.q_dim(), attn_scale);
    w.ffn_norm = g.vector(c.dim, 1.0, 0.1);
    w.w1 = g.matrix(c.hidden, c.dim, in_scale);
    w.w3 = g.matrix(c.hidden, c.dim, in_scale);
    w.w2 = g.matrix(c.dim, c.hidden, hidden_scale);
    m.layers.push_back(std::move(w));
  }
  // A tied classifier is the embedding, drawn at scale 1 rather than 1/sqrt(dim); its
  // final-norm gain carries that factor instead, or the logits would be sqrt(dim) times
  // those of an untied model (measured: max |logit| 395 for tiny-mqa over the long
  // prompt, a one-hot softmax that no fidelity metric can see into).
  const double final_scale = c.tied_classifier ? in_scale : 1.0;
  m.final_norm = g.vector(c.dim, final_scale, 0.1 * final_scale);
  m.classifier = c.tied_classifier ? m.embedding : g.matrix(c.vocab, c.dim, in_scale);
  return m;
}

std::vector<std::string> synthetic_shape_names() { return {"tiny-llama", "tiny-qwen2", "tiny-mqa"}; }

ModelConfig synthetic_shape(const std::string& name) {
  ModelConfig c;
  if (name == "tiny-llama") {
    c.arch = Arch::llama;
    c.vocab = 256, c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 4, c.head_dim = 16, c.hidden = 172;
    c.max_seq = 256, c.rms_norm_eps = 1e-5, c.rope_theta = 10000.0, c.rope = RopeStyle::rotate_half;
    c.tied_classifier = false, c.qkv_bias = false;
  } else if (name == "tiny-qwen2") {
    // Qwen2.5-7B's ratios at toy width: 7 query heads per KV head, q/k/v bias, theta 1e6.
    c.arch = Arch::qwen2;
    c.vocab = 256, c.dim = 112, c.n_layers = 2, c.n_heads = 7, c.n_kv_heads = 1, c.head_dim = 16, c.hidden = 296;
    c.max_seq = 2048, c.rms_norm_eps = 1e-6, c.rope_theta = 1000000.0, c.rope = RopeStyle::rotate_half;
    c.tied_classifier = false, c.qkv_bias = true;
  } else if (name == "tiny-mqa") {
    c.arch = Arch::llama;
    c.vocab = 128, c.dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 1, c.head_dim = 16, c.hidden = 160;
    c.max_seq = 256, c.rms_norm_eps = 1e-5, c.rope_theta = 10000.0, c.rope = RopeStyle::rotate_half;
    c.tied_classifier = true, c.qkv_bias = false;
  } else {
    throw InputError("--shape", "unknown shape '" + name + "' (expected tiny-llama, tiny-qwen2 or tiny-mqa)");
  }
  return c;
}

}  // namespace kvfid
