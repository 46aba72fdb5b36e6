#include "tests/common/model_files.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

namespace {

void put_floats(std::string& out, const std::vector<double>& values) {
  for (double v : values) {
    const float f = float(v);
    out.append(reinterpret_cast<const char*>(&f), 4);
  }
}

void put_layers(std::string& out, const Model& m, const std::vector<double>& (*get)(const LayerWeights&)) {
  for (const LayerWeights& w : m.layers) put_floats(out, get(w));
}

void put_layers(std::string& out, const Model& m, Matrix LayerWeights::*field) {
  for (const LayerWeights& w : m.layers) put_floats(out, (w.*field).values());
}

void expect_same_values(const std::vector<double>& a, const std::vector<double>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(double)) != 0) {
      ADD_FAILURE() << what << " element " << i << ": expected " << a[i] << ", got " << b[i];
      return;
    }
}

void expect_same_matrix(const Matrix& a, const Matrix& b, const std::string& what) {
  EXPECT_EQ(a.rows, b.rows) << what;
  EXPECT_EQ(a.cols, b.cols) << what;
  expect_same_values(a.values(), b.values(), what);
}

}  // namespace

std::string encode_llama2c(const Model& m) {
  const ModelConfig& c = m.config;
  std::string out;
  const std::int32_t header[7] = {c.dim,        c.hidden, c.n_layers, c.n_heads, c.n_kv_heads,
                                  c.tied_classifier ? c.vocab : -c.vocab, c.max_seq};
  out.append(reinterpret_cast<const char*>(header), sizeof header);
  put_floats(out, m.embedding.values());
  put_layers(out, m, [](const LayerWeights& w) -> const std::vector<double>& { return w.attn_norm; });
  put_layers(out, m, &LayerWeights::wq);
  put_layers(out, m, &LayerWeights::wk);
  put_layers(out, m, &LayerWeights::wv);
  put_layers(out, m, &LayerWeights::wo);
  put_layers(out, m, [](const LayerWeights& w) -> const std::vector<double>& { return w.ffn_norm; });
  put_layers(out, m, &LayerWeights::w1);
  put_layers(out, m, &LayerWeights::w2);
  put_layers(out, m, &LayerWeights::w3);
  put_floats(out, m.final_norm);
  put_floats(out, std::vector<double>(std::size_t(c.max_seq) * c.head_dim, 0.0));  // freq_cis real + imag
  if (!c.tied_classifier) put_floats(out, m.classifier.values());
  return out;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void expect_same_model(const Model& a, const Model& b) {
  EXPECT_EQ(to_json(a.config), to_json(b.config));
  expect_same_matrix(a.embedding, b.embedding, "embedding");
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    const LayerWeights &x = a.layers[l], &y = b.layers[l];
    const std::string at = "layer " + std::to_string(l) + " ";
    expect_same_values(x.attn_norm, y.attn_norm, at + "attn_norm");
    expect_same_matrix(x.wq, y.wq, at + "wq");
    expect_same_matrix(x.wk, y.wk, at + "wk");
    expect_same_matrix(x.wv, y.wv, at + "wv");
    expect_same_values(x.bq, y.bq, at + "bq");
    expect_same_values(x.bk, y.bk, at + "bk");
    expect_same_values(x.bv, y.bv, at + "bv");
    expect_same_values(x.q_norm, y.q_norm, at + "q_norm");
    expect_same_values(x.k_norm, y.k_norm, at + "k_norm");
    expect_same_matrix(x.wq_a, y.wq_a, at + "wq_a");
    expect_same_values(x.q_a_norm, y.q_a_norm, at + "q_a_norm");
    expect_same_matrix(x.wkv_a, y.wkv_a, at + "wkv_a");
    expect_same_values(x.kv_a_norm, y.kv_a_norm, at + "kv_a_norm");
    expect_same_matrix(x.wkv_b, y.wkv_b, at + "wkv_b");
    expect_same_matrix(x.wo, y.wo, at + "wo");
    expect_same_values(x.ffn_norm, y.ffn_norm, at + "ffn_norm");
    expect_same_values(x.post_attn_norm, y.post_attn_norm, at + "post_attn_norm");
    expect_same_values(x.post_ffn_norm, y.post_ffn_norm, at + "post_ffn_norm");
    expect_same_matrix(x.w1, y.w1, at + "w1");
    expect_same_matrix(x.w2, y.w2, at + "w2");
    expect_same_matrix(x.w3, y.w3, at + "w3");
  }
  expect_same_values(a.final_norm, b.final_norm, "final_norm");
  expect_same_matrix(a.classifier, b.classifier, "classifier");
}

ModelConfig tiny_llama2c_config(bool tied) {
  ModelConfig c = synthetic_shape("tiny-llama");
  c.n_kv_heads = 2;  // grouped-query, as stories260K
  c.max_seq = 32;
  c.rope = RopeStyle::interleaved;
  c.tied_classifier = tied;
  return c;
}

}  // namespace kvfid::test
