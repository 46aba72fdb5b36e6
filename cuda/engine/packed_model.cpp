#include "cuda/engine/packed_model.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "reference/formats/minifloat.h"
#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

// A block format is dequantized here, once, to FP32, and the matvec reads FP32 weights.
// That is bit-identical to dequantizing inside the matvec kernel (llama.cpp's way): a
// kernel would compute each weight as the codec's decode() -- one FP32 value, a pure
// function of the block -- and feed it to the same fma chain in the same order; doing it
// earlier changes no operand. decode() is the stored value itself (decode_exact, what
// the reference computes with) for every registered block format meant for weights:
// q8_0's decode is an FP16 scale (11 significant bits) times an int8 quant (7 bits),
// 18 bits, exact in FP32's 24. A format whose FP32 decode rounds (an asymmetric
// d * q + m) would make the engine compute with a weight that is not the stored one,
// so every decoded weight is checked against decode_exact and such a format refused.
PackedMatrix pack_blocks(const Matrix& m, const WeightFormat& format, const std::string& what) {
  const quant::FormatInfo& f = quant::all_formats()[format.codec];
  const std::size_t n = std::size_t(m.rows) * std::size_t(m.cols);
  std::vector<std::uint8_t> bytes(n * 4);  // [rows, cols] FP32
  const std::vector<std::uint8_t> codes = encode_matrix(m, f);  // [rows, cols / block, bytes]
  const quant::CodecParams params;
  for (std::size_t i = 0; i < n; ++i) {  // element i is element i % block of block i / block
    const std::uint8_t* block = codes.data() + i / f.block * f.bytes;
    const float w = f.decode(block, int(i % f.block), params);
    const double exact = f.decode_exact(block, int(i % f.block), params);
    if (double(w) != exact)
      throw InputError(format.source, "format " + std::string(f.name) + " cannot be dequantized to FP32 exactly: " + what +
                                        " element " + std::to_string(i) + " decodes to " + std::to_string(w) +
                                        " in FP32 but stands for " + std::to_string(exact));
    std::memcpy(bytes.data() + 4 * i, &w, 4);
  }
  return PackedMatrix::owning(m.rows, m.cols, std::move(bytes));
}

// The stored element type already is the packed format: its bytes are the packed bytes.
bool stored_as(const Matrix& m, FloatFormat f) {
  return m.plain_view() && m.stored_type() == weight_type_of(f);
}

}  // namespace

PackedMatrix PackedMatrix::owning(int rows, int cols, std::vector<std::uint8_t> bytes) {
  auto held = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
  PackedMatrix p;
  p.rows = rows, p.cols = cols, p.data_ = held->data(), p.size_ = held->size(), p.keep_ = std::move(held);
  return p;
}

PackedMatrix PackedMatrix::borrowing(int rows, int cols, std::span<const std::uint8_t> bytes, std::shared_ptr<const void> owner) {
  PackedMatrix p;
  p.rows = rows, p.cols = cols, p.data_ = bytes.data(), p.size_ = bytes.size(), p.keep_ = std::move(owner);
  p.borrowed_ = true;
  return p;
}

// A matrix stored in the target format is read in place: the packed bytes are the
// file's bytes, so borrowing them changes no operand. Only when the elements are not
// aligned to their width in the file (a safetensors header may leave any offset) are
// they copied, since the kernels load them as typed elements. Otherwise packs from the
// view one row at a time (decode_row: exact float64), so no float64 copy of a whole
// matrix ever exists.
PackedMatrix pack_matrix(const Matrix& m, const WeightFormat& format, const std::string& what) {
  if (!format.plain) return pack_blocks(m, format, what);
  const std::size_t cols = std::size_t(m.cols), n = std::size_t(m.rows) * cols;
  const std::size_t width = *format.plain == FloatFormat::f32 ? 4 : 2;
  if (stored_as(m, *format.plain)) {
    const std::span<const std::uint8_t> stored = m.stored_bytes();
    if (reinterpret_cast<std::uintptr_t>(stored.data()) % width == 0)
      return PackedMatrix::borrowing(m.rows, m.cols, stored, m.storage_owner());
    return PackedMatrix::owning(m.rows, m.cols, std::vector<std::uint8_t>(stored.begin(), stored.end()));
  }
  std::vector<std::uint8_t> bytes(n * width);  // [rows, cols] elements of the plain format
  std::vector<double> row(cols);  // [cols]
  for (int r = 0; r < m.rows; ++r) {
    m.decode_row(r, row.data());
    std::uint8_t* out = bytes.data() + std::size_t(r) * cols * width;
    for (std::size_t c = 0; c < cols; ++c) {
      if (width == 4) {
        const float f = float(row[c]);  // double -> float conversion rounds to nearest even
        std::memcpy(out + 4 * c, &f, 4);
      } else {
        // Directly from float64 with the exact codec: rounding through FP32 first could
        // double-round.
        const std::uint16_t h = std::uint16_t(minifloat_encode_rne(row[c], *format.plain == FloatFormat::f16 ? kFp16 : kBf16));
        std::memcpy(out + 2 * c, &h, 2);
      }
    }
  }
  return PackedMatrix::owning(m.rows, m.cols, std::move(bytes));
}

std::vector<float> pack_vector(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

std::vector<float> pack_gains(const std::vector<double>& w, const ModelConfig& c) {
  std::vector<float> g = pack_vector(w);
  if (c.norm_unit_offset)
    for (float& x : g) x = 1.0f + x;  // one FP32 rounding of 1 + w (w is FP32 already)
  return g;
}

float attention_scale(const ModelConfig& c) { return float(1.0 / std::sqrt(c.score_scale_dim())); }

PackedModel pack_model(const Model& model, const WeightFormat& format) {
  const ModelConfig& c = model.config;
  c.validate(model.source.empty() ? "model" : model.source);
  check_weight_format_fits(format, c);
  PackedModel p;
  p.config = c;
  p.weights = format.plain.value_or(FloatFormat::f32);
  p.embedding = pack_matrix(model.embedding, format, "embedding");
  for (std::size_t i = 0; i < model.layers.size(); ++i) {
    const LayerWeights& w = model.layers[i];
    const std::string layer = "layer " + std::to_string(i) + " ";
    PackedLayer l;
    l.attn_norm = pack_gains(w.attn_norm, c);
    l.wq = pack_matrix(w.wq, format, layer + "wq");
    if (c.mla.active()) {  // no wk, wv: keys and values come from the latent
      if (c.mla.q_lora_rank > 0) l.wq_a = pack_matrix(w.wq_a, format, layer + "wq_a");
      l.q_a_norm = pack_gains(w.q_a_norm, c);
      l.wkv_a = pack_matrix(w.wkv_a, format, layer + "wkv_a");
      l.kv_a_norm = pack_gains(w.kv_a_norm, c);
      l.wkv_b = pack_matrix(w.wkv_b, format, layer + "wkv_b");
    } else {
      l.wk = pack_matrix(w.wk, format, layer + "wk");
      l.wv = pack_matrix(w.wv, format, layer + "wv");
    }
    l.bq = pack_vector(w.bq);
    l.bk = pack_vector(w.bk);
    l.bv = pack_vector(w.bv);
    l.q_norm = pack_gains(w.q_norm, c);
    l.k_norm = pack_gains(w.k_norm, c);
    l.wo = pack_matrix(w.wo, format, layer + "wo");
    l.ffn_norm = pack_gains(w.ffn_norm, c);
    l.post_attn_norm = pack_gains(w.post_attn_norm, c);
    l.post_ffn_norm = pack_gains(w.post_ffn_norm, c);
    l.w1 = pack_matrix(w.w1, format, layer + "w1");
    l.w3 = pack_matrix(w.w3, format, layer + "w3");
    l.w2 = pack_matrix(w.w2, format, layer + "w2");
    p.layers.push_back(std::move(l));
  }
  p.final_norm = pack_gains(model.final_norm, c);
  // Tied: the same storage read the same way packs to the same bytes, so it is shared.
  p.classifier = model.classifier.same_view(model.embedding) ? p.embedding : pack_matrix(model.classifier, format, "classifier");
  p.eps = float(c.rms_norm_eps);
  p.attn_scale = attention_scale(c);
  p.embed_scale = float(c.embed_scale);
  p.attn_softcap = float(c.attn_softcap);
  p.final_softcap = float(c.final_softcap);
  return p;
}

}  // namespace kvfid::engine
