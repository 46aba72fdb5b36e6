#include "tests/common/gguf_model_file.h"

#include <cstring>
#include <vector>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"
#include "tests/common/gguf_writer.h"

namespace kvfid::test {
using namespace kvfid::ref;

namespace {

std::string floats(const std::vector<double>& v) {
  std::string b(v.size() * 4, '\0');
  for (std::size_t i = 0; i < v.size(); ++i) {
    const float f = float(v[i]);
    std::memcpy(&b[4 * i], &f, 4);
  }
  return b;
}

std::string halves(const std::vector<double>& v, MiniFloatSpec spec) {
  std::string b(v.size() * 2, '\0');
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::uint16_t h = std::uint16_t(minifloat_encode_rne(v[i], spec));
    std::memcpy(&b[2 * i], &h, 2);
  }
  return b;
}

// Rows of blocks, each encoded from the elements rounded to FP32 (as ggml quantizes an F32 tensor).
std::string blocks(const Matrix& m, const char* format) {
  const quant::FormatInfo& f = quant::format_by_name(format, "test");
  std::string b;
  std::vector<double> row(std::size_t(m.cols));
  std::vector<float> x(std::size_t(f.block));
  std::string code(std::size_t(f.bytes), '\0');
  for (int r = 0; r < m.rows; ++r) {
    m.decode_row(r, row.data());
    for (int c = 0; c < m.cols; c += f.block) {
      for (int i = 0; i < f.block; ++i) x[std::size_t(i)] = float(row[std::size_t(c + i)]);
      f.encode(x.data(), reinterpret_cast<std::uint8_t*>(code.data()), quant::CodecParams{});
      b += code;
    }
  }
  return b;
}

}  // namespace

std::string gguf_of(const Model& model, const std::string& arch, std::uint32_t type) {
  const ModelConfig& c = model.config;
  GgufWriter w;
  w.str("general.architecture", arch);
  w.u32(arch + ".context_length", std::uint32_t(c.max_seq));
  w.u32(arch + ".embedding_length", std::uint32_t(c.dim));
  w.u32(arch + ".block_count", std::uint32_t(c.n_layers));
  w.u32(arch + ".feed_forward_length", std::uint32_t(c.hidden));
  w.u32(arch + ".attention.head_count", std::uint32_t(c.n_heads));
  w.u32(arch + ".attention.head_count_kv", std::uint32_t(c.n_kv_heads));
  w.u32(arch + ".attention.key_length", std::uint32_t(c.head_dim));
  w.f32(arch + ".attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  w.f32(arch + ".rope.freq_base", float(c.rope_theta));
  std::vector<std::string> tokens;
  for (int t = 0; t < c.vocab; ++t) tokens.push_back("<" + std::to_string(t) + ">");
  w.strings("tokenizer.ggml.tokens", tokens);
  auto matrix = [&](const std::string& name, const Matrix& m) {
    std::string bytes = type == GgufWriter::kF32    ? floats(m.values())
                        : type == GgufWriter::kF16  ? halves(m.values(), kFp16)
                        : type == GgufWriter::kBF16 ? halves(m.values(), kBf16)
                        : type == GgufWriter::kQ8_0 ? blocks(m, "q8_0")
                                                    : blocks(m, "q4_0");
    w.tensor(name, {std::uint64_t(m.cols), std::uint64_t(m.rows)}, type, std::move(bytes));
  };
  auto vector = [&](const std::string& name, const std::vector<double>& v) {
    w.tensor(name, {v.size()}, GgufWriter::kF32, floats(v));
  };
  matrix("token_embd.weight", model.embedding);
  vector("output_norm.weight", model.final_norm);
  if (!c.tied_classifier) matrix("output.weight", model.classifier);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = model.layers[std::size_t(l)];
    const std::string p = "blk." + std::to_string(l) + ".";
    vector(p + "attn_norm.weight", L.attn_norm);
    matrix(p + "attn_q.weight", L.wq);
    matrix(p + "attn_k.weight", L.wk);
    matrix(p + "attn_v.weight", L.wv);
    if (c.qkv_bias) {
      vector(p + "attn_q.bias", L.bq);
      vector(p + "attn_k.bias", L.bk);
      vector(p + "attn_v.bias", L.bv);
    }
    if (c.qk_norm) {
      vector(p + "attn_q_norm.weight", L.q_norm);
      vector(p + "attn_k_norm.weight", L.k_norm);
    }
    matrix(p + "attn_output.weight", L.wo);
    vector(p + "ffn_norm.weight", L.ffn_norm);
    matrix(p + "ffn_gate.weight", L.w1);
    matrix(p + "ffn_up.weight", L.w3);
    matrix(p + "ffn_down.weight", L.w2);
  }
  return w.bytes();
}

}  // namespace kvfid::test
