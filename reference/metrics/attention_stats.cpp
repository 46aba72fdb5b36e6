#include "reference/metrics/attention_stats.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace kvfid::ref {

double attention_entropy(const double* p, int n) {
  double h = 0;
  for (int j = 0; j < n; ++j)
    if (p[j] > 0) h -= p[j] * std::log(p[j]);
  return h;
}

AttentionSummary attention_summary_from_probs(const TapTensor& probs, int t) {
  if (probs.shape.size() != 3 || probs.shape[1] != probs.shape[2] || probs.values.size() != std::size_t(probs.numel()))
    throw std::invalid_argument("attention_summary_from_probs: '" + probs.name + "' is not [n_heads, T, T]");
  const int heads = int(probs.shape[0]), T = int(probs.shape[1]);
  if (t < 0 || t >= T) throw std::invalid_argument("attention_summary_from_probs: position outside the tap");
  return attention_summary_from_rows(probs.values.data() + std::size_t(t) * T, std::size_t(T) * T, heads, t + 1);
}

AttentionSummary attention_summary_from_rows(const double* rows, std::size_t stride, int heads, int keys) {
  AttentionSummary s;
  for (int h = 0; h < heads; ++h) {
    const double* row = rows + std::size_t(h) * stride;  // [keys]
    s.entropy += attention_entropy(row, keys);
    s.newest_weight += row[keys - 1];
  }
  s.entropy /= heads;
  s.newest_weight /= heads;
  return s;
}

AttentionSummary attention_summary_from_qk(const double* q, const double* k, int keys, const ModelConfig& config,
                                           int layer) {
  if (keys < 1) throw std::invalid_argument("attention_summary_from_qk: a query attends to at least one key");
  const int hd = config.head_dim;
  const AttentionShape rule = attention_shape(config, keys, layer);
  const int first = rule.first_key(keys - 1);
  std::vector<double> p(static_cast<std::size_t>(keys), 0.0);  // [keys] one head's weights, 0 before the window
  AttentionSummary s;
  for (int h = 0; h < config.n_heads; ++h) {
    const double* qh = q + std::size_t(h) * hd;  // [head_dim]
    for (int j = first; j < keys; ++j) {
      const double* kj = k + (std::size_t(j) * config.n_kv_heads + config.kv_head_of(h)) * hd;  // [head_dim]
      double dot = 0;
      for (int d = 0; d < hd; ++d) dot += qh[d] * kj[d];
      p[std::size_t(j)] = double(rule.score(dot));
    }
    const double top = *std::max_element(p.begin() + first, p.end());
    double sum = 0;
    for (int j = first; j < keys; ++j) sum += p[std::size_t(j)] = std::exp(p[std::size_t(j)] - top);
    for (int j = first; j < keys; ++j) p[std::size_t(j)] /= sum;
    s.entropy += attention_entropy(p.data(), keys);
    s.newest_weight += p[std::size_t(keys) - 1];
  }
  s.entropy /= config.n_heads;
  s.newest_weight /= config.n_heads;
  return s;
}

}  // namespace kvfid::ref
