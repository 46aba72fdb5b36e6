#include "reference/model/rope_permute.h"

namespace kvfid::ref {

namespace {

// rows: [n_heads * head_dim, ...] in interleaved order -> rotate-half order, as a
// view of the same storage with its rows remapped (nothing copied).
Matrix permute_rows(const Matrix& w, int n_heads, int head_dim) {
  std::vector<int> source(std::size_t(w.rows));  // [rows] source row of each destination row
  for (int h = 0; h < n_heads; ++h)
    for (int r = 0; r < head_dim; ++r)
      source[std::size_t(h * head_dim + rotate_half_position(r, head_dim))] = h * head_dim + r;
  return w.with_rows(std::move(source));
}

// [n_heads * head_dim]
std::vector<double> permute_vector(const std::vector<double>& v, int n_heads, int head_dim) {
  if (v.empty()) return v;
  std::vector<double> out(v.size());
  for (int h = 0; h < n_heads; ++h)
    for (int r = 0; r < head_dim; ++r)
      out[std::size_t(h * head_dim + rotate_half_position(r, head_dim))] = v[std::size_t(h * head_dim + r)];
  return out;
}

}  // namespace

int rotate_half_position(int row_in_head, int head_dim) {
  return row_in_head % 2 == 0 ? row_in_head / 2 : row_in_head / 2 + head_dim / 2;
}

Model permute_to_rotate_half(const Model& model) {
  Model out = model;
  if (model.config.rope == RopeStyle::rotate_half) return out;
  const ModelConfig& c = model.config;
  for (LayerWeights& w : out.layers) {
    w.wq = permute_rows(w.wq, c.n_heads, c.head_dim);
    w.wk = permute_rows(w.wk, c.n_kv_heads, c.head_dim);
    w.bq = permute_vector(w.bq, c.n_heads, c.head_dim);
    w.bk = permute_vector(w.bk, c.n_kv_heads, c.head_dim);
    // The per-head norms' gains follow their dimensions (the norm itself is order-free).
    w.q_norm = permute_vector(w.q_norm, 1, c.head_dim);
    w.k_norm = permute_vector(w.k_norm, 1, c.head_dim);
  }
  out.config.rope = RopeStyle::rotate_half;
  return out;
}

}  // namespace kvfid::ref
