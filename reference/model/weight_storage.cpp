#include "reference/model/weight_storage.h"

#include "reference/util/input_error.h"

namespace kvfid::ref {

WeightFormat weight_format_from_string(const std::string& name, const std::string& source) {
  for (const char* plain : {"f32", "fp32", "f16", "fp16", "bf16"})
    if (name == plain) {
      const FloatFormat f = float_format_from_string(name, source);
      return {to_string(f), f, -1, source};
    }
  const quant::FormatInfo& f = quant::format_by_name(name, source);
  return {f.name, std::nullopt, f.index, source};
}

void check_weight_format_fits(const WeightFormat& format, const ModelConfig& config) {
  if (format.plain) return;
  const int block = quant::all_formats()[format.codec].block;
  std::vector<std::pair<int, std::string>> widths = {{config.dim, "dim (embedding, wq, wk, wv, w1, w3, classifier)"},
                                                     {config.attn_out_dim(), "q_dim (wo)"},
                                                     {config.hidden, "hidden (w2)"}};
  if (config.mla.active()) {  // latent attention's own matrices
    widths.emplace_back(config.q_in_dim(), "q_lora_rank (wq)");
    widths.emplace_back(config.mla.kv_lora_rank, "kv_lora_rank (wkv_b)");
  }
  for (const auto& [cols, what] : widths)
    if (cols % block != 0)
      throw InputError(format.source, "weight format " + format.name + " has blocks of " + std::to_string(block) +
                                   " elements, which do not divide the " + std::to_string(cols) + " columns of " +
                                   what);
}

std::vector<std::uint8_t> encode_matrix(const Matrix& m, const quant::FormatInfo& format) {
  const int blocks_per_row = m.cols / format.block;
  std::vector<std::uint8_t> bytes(std::size_t(m.rows) * blocks_per_row * format.bytes);  // [rows, blocks, bytes]
  std::vector<float> x(std::size_t(format.block));
  std::vector<double> row(std::size_t(m.cols));  // [cols]
  const quant::CodecParams params;
  for (int r = 0; r < m.rows; ++r) {
    m.decode_row(r, row.data());
    for (int b = 0; b < blocks_per_row; ++b) {
      for (int i = 0; i < format.block; ++i) x[i] = float(row[std::size_t(b * format.block + i)]);  // RN to FP32
      format.encode(x.data(), bytes.data() + (std::size_t(r) * blocks_per_row + b) * format.bytes, params);
    }
  }
  return bytes;
}

Matrix stored_matrix(const Matrix& m, const WeightFormat& format) {
  return m.rounded(ElementRounding{format.plain, format.plain ? -1 : format.codec});
}

namespace {

std::vector<double> in_fp32(const std::vector<double>& v) {
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) r[i] = double(float(v[i]));
  return r;
}

}  // namespace

Model stored_model(const Model& model, const WeightFormat& format) {
  check_weight_format_fits(format, model.config);
  Model s = model;
  s.embedding = stored_matrix(model.embedding, format);
  for (LayerWeights& l : s.layers) {
    l.attn_norm = in_fp32(l.attn_norm);
    l.ffn_norm = in_fp32(l.ffn_norm);
    l.post_attn_norm = in_fp32(l.post_attn_norm);
    l.post_ffn_norm = in_fp32(l.post_ffn_norm);
    l.bq = in_fp32(l.bq);
    l.q_norm = in_fp32(l.q_norm);
    l.k_norm = in_fp32(l.k_norm);
    l.bk = in_fp32(l.bk);
    l.bv = in_fp32(l.bv);
    l.q_a_norm = in_fp32(l.q_a_norm);
    l.kv_a_norm = in_fp32(l.kv_a_norm);
    for (Matrix* w : {&l.wq, &l.wk, &l.wv, &l.wq_a, &l.wkv_a, &l.wkv_b, &l.wo, &l.w1, &l.w3, &l.w2})
      if (w->rows > 0) *w = stored_matrix(*w, format);  // the matrices the model has (MLA: no wk, wv)
  }
  s.final_norm = in_fp32(model.final_norm);
  s.classifier = stored_matrix(model.classifier, format);
  return s;
}

}  // namespace kvfid::ref
