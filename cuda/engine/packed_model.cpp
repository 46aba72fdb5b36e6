#include "cuda/engine/packed_model.h"

#include <cmath>
#include <cstring>

#include "reference/formats/minifloat.h"

namespace kvfid {

num::Fmt to_fmt(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return num::Fmt::f32;
    case FloatFormat::f16: return num::Fmt::f16;
    case FloatFormat::bf16: return num::Fmt::bf16;
  }
  return num::Fmt::f32;
}

PackedMatrix pack_matrix(const Matrix& m, FloatFormat format) {
  PackedMatrix p;
  p.rows = m.rows;
  p.cols = m.cols;
  const std::size_t n = m.data.size();
  if (format == FloatFormat::f32) {
    p.bytes.resize(n * 4);
    for (std::size_t i = 0; i < n; ++i) {
      const float f = float(m.data[i]);  // double -> float conversion rounds to nearest even
      std::memcpy(p.bytes.data() + 4 * i, &f, 4);
    }
    return p;
  }
  // Directly from float64 with the exact codec: rounding through FP32 first could
  // double-round.
  const MiniFloatSpec spec = format == FloatFormat::f16 ? kFp16 : kBf16;
  p.bytes.resize(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t h = std::uint16_t(minifloat_encode_rne(m.data[i], spec));
    std::memcpy(p.bytes.data() + 2 * i, &h, 2);
  }
  return p;
}

std::vector<float> pack_vector(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

float attention_scale(const ModelConfig& c) { return float(1.0 / std::sqrt(double(c.head_dim))); }

PackedModel pack_model(const Model& model, FloatFormat weights) {
  const ModelConfig& c = model.config;
  c.validate(model.source.empty() ? "model" : model.source);
  PackedModel p;
  p.config = c;
  p.weights = to_fmt(weights);
  p.embedding = pack_matrix(model.embedding, weights);
  for (const LayerWeights& w : model.layers) {
    PackedLayer l;
    l.attn_norm = pack_vector(w.attn_norm);
    l.wq = pack_matrix(w.wq, weights);
    l.wk = pack_matrix(w.wk, weights);
    l.wv = pack_matrix(w.wv, weights);
    l.bq = pack_vector(w.bq);
    l.bk = pack_vector(w.bk);
    l.bv = pack_vector(w.bv);
    l.wo = pack_matrix(w.wo, weights);
    l.ffn_norm = pack_vector(w.ffn_norm);
    l.w1 = pack_matrix(w.w1, weights);
    l.w3 = pack_matrix(w.w3, weights);
    l.w2 = pack_matrix(w.w2, weights);
    p.layers.push_back(std::move(l));
  }
  p.final_norm = pack_vector(model.final_norm);
  p.classifier = pack_matrix(model.classifier, weights);
  p.eps = float(c.rms_norm_eps);
  p.attn_scale = attention_scale(c);
  return p;
}

}  // namespace kvfid
