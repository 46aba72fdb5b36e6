#include "reference/synth/synthetic_model.h"

#include <cmath>
#include <stdexcept>

#include "reference/formats/minifloat.h"

namespace kvfid::ref {

namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;  // SplitMix64's increment
constexpr int kDrawsPerValue = 4;                          // uniforms per normalish()

// SplitMix64: a counter-based stream, so each tensor draws from its own substream and
// draw k of a stream is a function of its start and k alone.
struct Stream {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += kGolden);
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

// The stream positioned before value `index` of the tensor whose stream starts at `base`
// (wrapping arithmetic, as next() itself).
Stream stream_at(std::uint64_t base, std::int64_t index) {
  return Stream{base + std::uint64_t(index) * kDrawsPerValue * kGolden};
}

double store(double x, SynthPrecision p) {
  switch (p) {
    case SynthPrecision::f32: return double(float(x));
    case SynthPrecision::f16: return minifloat_round(x, kFp16);
    case SynthPrecision::bf16: return minifloat_round(x, kBf16);
  }
  return x;
}

bool per_layer(WeightRole r) {
  return r != WeightRole::embedding && r != WeightRole::final_norm && r != WeightRole::classifier;
}

// A tensor's place in the generation order the committed fixtures were made with:
// embedding; per layer attn_norm, wq, wk, wv, [bq, bk, bv], wo, ffn_norm, w1, w3, w2,
// [q_norm, k_norm], [post_attn_norm, post_ffn_norm]; final norm; classifier. Its stream is keyed by that place.
std::uint64_t ordinal_in_layer(WeightRole r, bool bias, bool qk_norm) {
  const std::uint64_t b = bias ? 3 : 0, n = qk_norm ? 2 : 0;
  switch (r) {
    case WeightRole::attn_norm: return 0;
    case WeightRole::wq: return 1;
    case WeightRole::wk: return 2;
    case WeightRole::wv: return 3;
    case WeightRole::bq: return 4;
    case WeightRole::bk: return 5;
    case WeightRole::bv: return 6;
    case WeightRole::wo: return 4 + b;
    case WeightRole::ffn_norm: return 5 + b;
    case WeightRole::w1: return 6 + b;
    case WeightRole::w3: return 7 + b;
    case WeightRole::w2: return 8 + b;
    case WeightRole::q_norm: return 9 + b;
    case WeightRole::k_norm: return 10 + b;
    case WeightRole::post_attn_norm: return 9 + b + n;
    case WeightRole::post_ffn_norm: return 10 + b + n;
    default: throw std::logic_error("not a per-layer weight");
  }
}

// Latent attention's layers (new: no committed fixture predates them): attn_norm, wq,
// wq_a, q_a_norm, wkv_a, kv_a_norm, wkv_b, wo, ffn_norm, w1, w3, w2, whether or not the
// query is low-rank.
constexpr std::uint64_t kLatentLayerCount = 12;
std::uint64_t latent_ordinal_in_layer(WeightRole r) {
  switch (r) {
    case WeightRole::attn_norm: return 0;
    case WeightRole::wq: return 1;
    case WeightRole::wq_a: return 2;
    case WeightRole::q_a_norm: return 3;
    case WeightRole::wkv_a: return 4;
    case WeightRole::kv_a_norm: return 5;
    case WeightRole::wkv_b: return 6;
    case WeightRole::wo: return 7;
    case WeightRole::ffn_norm: return 8;
    case WeightRole::w1: return 9;
    case WeightRole::w3: return 10;
    case WeightRole::w2: return 11;
    default: throw std::logic_error("not a per-layer weight of latent attention");
  }
}

}  // namespace

SyntheticWeights::SyntheticWeights(const ModelConfig& c, std::uint64_t seed, const SynthOptions& o)
    : config_(c), seed_(seed), options_(o) {
  c.validate("synthetic model");
  if (options_.layout_layers == 0) options_.layout_layers = c.n_layers;
  if (options_.layout_layers < c.n_layers) throw std::invalid_argument("layout_layers below the model's layers");
}

std::uint64_t SyntheticWeights::stream_base(WeightRole role, int layer) const {
  const bool latent = config_.mla.active();
  const std::uint64_t per_layer_count =
      latent ? kLatentLayerCount
             : 9 + (config_.qkv_bias ? 3 : 0) + (config_.qk_norm ? 2 : 0) + (config_.sandwich_norms ? 2 : 0);
  std::uint64_t counter;  // 1-based place in the generation order
  if (role == WeightRole::embedding) counter = 1;
  else if (per_layer(role))
    counter = 2 + std::uint64_t(layer) * per_layer_count +
              (latent ? latent_ordinal_in_layer(role) : ordinal_in_layer(role, config_.qkv_bias, config_.qk_norm));
  else counter = 2 + std::uint64_t(options_.layout_layers) * per_layer_count + (role == WeightRole::classifier ? 1 : 0);
  return seed_ * 0x2545F4914F6CDD1Dull + 0x9E37ull * counter;
}

std::int64_t SyntheticWeights::columns(WeightRole role) const {
  const ModelConfig& c = config_;
  switch (role) {
    case WeightRole::attn_norm: case WeightRole::ffn_norm: case WeightRole::final_norm:
    case WeightRole::post_attn_norm: case WeightRole::post_ffn_norm: return c.dim;
    case WeightRole::bq: return c.q_dim();
    case WeightRole::q_norm: case WeightRole::k_norm: return c.head_dim;
    case WeightRole::bk: case WeightRole::bv: return c.kv_dim();
    case WeightRole::embedding: case WeightRole::classifier: case WeightRole::wk:
    case WeightRole::wv: case WeightRole::w1: case WeightRole::w3: case WeightRole::wq_a:
    case WeightRole::wkv_a: return c.dim;
    case WeightRole::wq: return c.q_in_dim();
    case WeightRole::wo: return c.attn_out_dim();
    case WeightRole::w2: return c.hidden;
    case WeightRole::q_a_norm: return c.mla.q_lora_rank;
    case WeightRole::kv_a_norm: case WeightRole::wkv_b: return c.mla.kv_lora_rank;
  }
  throw std::logic_error("unknown weight role");
}

void SyntheticWeights::rows(WeightRole role, int layer, std::int64_t begin, std::int64_t end, double* out) const {
  const ModelConfig& c = config_;
  const SynthOptions& o = options_;
  if (role == WeightRole::classifier && c.tied_classifier) role = WeightRole::embedding;  // it is the embedding
  const std::int64_t cols = columns(role);
  // Projections scaled by 1/sqrt(fan_in) keep activations O(1), as trained models do.
  const double in_scale = 1.0 / std::sqrt(double(c.dim));
  const double hidden_scale = 1.0 / std::sqrt(double(c.hidden));
  const double attn_scale = 1.0 / std::sqrt(double(c.attn_out_dim()));
  // Latent attention's second projections read normed latents of O(1) entries.
  const double q_latent_scale = c.mla.q_lora_rank > 0 ? 1.0 / std::sqrt(double(c.mla.q_lora_rank)) : in_scale;
  const double kv_latent_scale = c.mla.active() ? 1.0 / std::sqrt(double(c.mla.kv_lora_rank)) : in_scale;
  // A tied classifier is the embedding, drawn at scale 1 rather than 1/sqrt(dim); its
  // final-norm gain carries that factor instead, or the logits would be sqrt(dim) times
  // those of an untied model (measured: max |logit| 395 for tiny-mqa over the long
  // prompt, a one-hot softmax that no fidelity metric can see into).
  // Gemma's embedding is multiplied by embed_scale (about sqrt(dim)) on the way in, so
  // it is drawn at 1/embed_scale. The massive dimensions still dominate a tied
  // classifier's logits (tiny-gemma2 without the factor: rms 9.7, max 40), so the factor
  // stays.
  const double embedding_scale = 1.0 / c.embed_scale;
  const double final_scale = c.tied_classifier ? in_scale : 1.0;
  // Gains 1 + w are drawn as w around 0.
  const double gain_mean = c.norm_unit_offset ? 0.0 : 1.0;

  bool vector = true;  // mean + scale * noise, else scale * noise
  double mean = 0, scale = 1;
  switch (role) {
    case WeightRole::attn_norm: case WeightRole::ffn_norm: case WeightRole::post_attn_norm:
    case WeightRole::post_ffn_norm: case WeightRole::q_a_norm: case WeightRole::kv_a_norm:
      mean = gain_mean, scale = 0.1; break;
    case WeightRole::wq: vector = false, scale = q_latent_scale; break;
    case WeightRole::wkv_b: vector = false, scale = kv_latent_scale; break;
    case WeightRole::q_norm: case WeightRole::k_norm: mean = gain_mean, scale = 0.2; break;
    case WeightRole::bq: case WeightRole::bk: scale = 0.5; break;
    case WeightRole::bv: scale = 0.1; break;
    case WeightRole::final_norm: mean = c.norm_unit_offset ? final_scale - 1.0 : final_scale, scale = 0.1 * final_scale; break;
    case WeightRole::embedding: vector = false, scale = embedding_scale; break;
    case WeightRole::wo: vector = false, scale = attn_scale; break;
    case WeightRole::w2: vector = false, scale = hidden_scale; break;
    default: vector = false, scale = in_scale; break;
  }
  const std::uint64_t base = stream_base(role, layer);
  Stream s = stream_at(base, begin * cols);
  const std::int64_t n = (end - begin) * cols;
  for (std::int64_t i = 0; i < n; ++i)
    out[i] = vector ? store(mean + scale * s.normalish(), o.precision) : store(scale * s.normalish(), o.precision);

  for (std::int64_t r = begin; r < end; ++r) {
    double* row = out + (r - begin) * cols;
    if (role == WeightRole::embedding)
      for (int d = 0; d < o.massive_dims && d < c.dim; ++d) {
        // Spread the massive dimensions over the width rather than at index 0.
        const int dim = (d * 37 + 5) % c.dim;
        row[dim] = store(row[dim] * o.massive_scale, o.precision);
      }
    // Key outlier channels: rows of wk, or under latent attention the key rows of each
    // head's block of wkv_b (its first nope rows), the same channels of every head.
    const std::int64_t key_row = role == WeightRole::wk                               ? r % c.head_dim
                                 : role == WeightRole::wkv_b && r % (c.nope_dim() + c.v_head_dim()) < c.nope_dim()
                                     ? r % (c.nope_dim() + c.v_head_dim())
                                     : -1;
    if (key_row >= 0)
      for (int j = 0; j < o.k_outlier_channels && j < c.head_dim; ++j)
        if ((j * 5 + 3 + layer) % c.head_dim == key_row)
          for (std::int64_t col = 0; col < cols; ++col) row[col] = store(row[col] * o.k_outlier_scale, o.precision);
  }
}

Model make_synthetic_model(const ModelConfig& c, std::uint64_t seed, const SynthOptions& o) {
  const SyntheticWeights g(c, seed, o);
  Model m;
  m.config = c;
  m.source = "synthetic(seed=" + std::to_string(seed) + ")";
  auto matrix = [&](WeightRole role, int layer, int rows, int cols) {
    Matrix x(rows, cols);
    g.rows(role, layer, 0, rows, x.mutable_values().data());
    return x;
  };
  auto vector = [&](WeightRole role, int layer, int n) {
    std::vector<double> v(std::size_t(n), 0.0);
    g.rows(role, layer, 0, 1, v.data());
    return v;
  };
  m.embedding = matrix(WeightRole::embedding, 0, c.vocab, c.dim);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights w;
    w.attn_norm = vector(WeightRole::attn_norm, l, c.dim);
    w.wq = matrix(WeightRole::wq, l, c.q_dim(), c.q_in_dim());
    if (c.mla.active()) {
      const LatentAttention& a = c.mla;
      if (a.q_lora_rank > 0) {
        w.wq_a = matrix(WeightRole::wq_a, l, a.q_lora_rank, c.dim);
        w.q_a_norm = vector(WeightRole::q_a_norm, l, a.q_lora_rank);
      }
      w.wkv_a = matrix(WeightRole::wkv_a, l, a.kv_lora_rank + a.rope_dim, c.dim);
      w.kv_a_norm = vector(WeightRole::kv_a_norm, l, a.kv_lora_rank);
      w.wkv_b = matrix(WeightRole::wkv_b, l, c.n_heads * (c.nope_dim() + a.v_head_dim), a.kv_lora_rank);
    } else {
      w.wk = matrix(WeightRole::wk, l, c.kv_dim(), c.dim);
      w.wv = matrix(WeightRole::wv, l, c.kv_dim(), c.dim);
    }
    if (c.qkv_bias) {
      w.bq = vector(WeightRole::bq, l, c.q_dim());
      w.bk = vector(WeightRole::bk, l, c.kv_dim());
      w.bv = vector(WeightRole::bv, l, c.kv_dim());
    }
    w.wo = matrix(WeightRole::wo, l, c.dim, c.attn_out_dim());
    w.ffn_norm = vector(WeightRole::ffn_norm, l, c.dim);
    w.w1 = matrix(WeightRole::w1, l, c.hidden, c.dim);
    w.w3 = matrix(WeightRole::w3, l, c.hidden, c.dim);
    w.w2 = matrix(WeightRole::w2, l, c.dim, c.hidden);
    if (c.qk_norm) {
      w.q_norm = vector(WeightRole::q_norm, l, c.head_dim);
      w.k_norm = vector(WeightRole::k_norm, l, c.head_dim);
    }
    if (c.sandwich_norms) {
      w.post_attn_norm = vector(WeightRole::post_attn_norm, l, c.dim);
      w.post_ffn_norm = vector(WeightRole::post_ffn_norm, l, c.dim);
    }
    m.layers.push_back(std::move(w));
  }
  m.final_norm = vector(WeightRole::final_norm, 0, c.dim);
  m.classifier = c.tied_classifier ? m.embedding : matrix(WeightRole::classifier, 0, c.vocab, c.dim);
  return m;
}

}  // namespace kvfid::ref
