#include "reference/metrics/key_distortion.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

#include "reference/metrics/logit_metrics.h"

namespace kvfid::ref {

namespace {

using Real = long double;

void check_inputs(std::span<const double> q, std::span<const double> k, const KeysAsRead& keys,
                  const AttentionShape& shape) {
  constexpr const char* kWhat = "key_distortion_per_query_head";
  check_attention_shape(shape, kWhat);
  check_values(q, shape.q_values(), "key_distortion_per_query_head golden q");
  check_values(k, shape.kv_values(), "key_distortion_per_query_head golden k");
  check_values(keys.cold, shape.kv_values(), "key_distortion_per_query_head cold keys");
  if (keys.cold_end.empty()) return;
  check_values(keys.hot, shape.kv_values(), "key_distortion_per_query_head hot keys");
  if (keys.cold_end.size() != std::size_t(shape.tokens))
    throw std::invalid_argument(std::string(kWhat) + ": cold_end must hold T values");
  for (int t = 0; t < shape.tokens; ++t)
    if (keys.cold_end[t] < 0 || keys.cold_end[t] > t + 1)
      throw std::invalid_argument(std::string(kWhat) + ": cold_end[" + std::to_string(t) + "] outside [0, t + 1]");
}

Real dot(const double* a, const double* b, std::size_t n) {
  Real sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += Real(a[i]) * b[i];
  return sum;
}

// q·(k̂ - k), the score's error taken directly rather than as the difference of two
// nearly equal scores.
Real dot_of_difference(const double* q, const double* read, const double* golden, std::size_t n) {
  Real sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += Real(q[i]) * (Real(read[i]) - golden[i]);
  return sum;
}

double relative_error(Real error, Real norms) {
  if (norms > 0) return double(std::fabs(error) / norms);
  return error == 0 ? 0.0 : std::numeric_limits<double>::infinity();
}

}  // namespace

std::vector<KeyDistortion> key_distortion_per_query_head(std::span<const double> golden_q,
                                                         std::span<const double> golden_k, const KeysAsRead& keys,
                                                         const AttentionShape& shape) {
  check_inputs(golden_q, golden_k, keys, shape);
  const std::size_t T = std::size_t(shape.tokens), dim = std::size_t(shape.head_dim);
  const std::size_t heads = std::size_t(shape.n_heads), kv_heads = std::size_t(shape.n_kv_heads);
  const auto key_at = [&](std::span<const double> keys_tensor, std::size_t j, std::size_t kv) {
    return keys_tensor.data() + (j * kv_heads + kv) * dim;  // [head_dim]
  };
  std::vector<KeyDistortion> out(heads);  // [n_heads]
  std::vector<double> scores, scores_read;  // [t + 1] each
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t kv = std::size_t(shape.kv_head_of(int(h)));
    KeyDistortion& d = out[h];
    Real qk_sum = 0, kl_sum = 0;
    std::size_t pairs = 0;
    for (std::size_t t = 0; t < T; ++t) {
      const double* q = golden_q.data() + (t * heads + h) * dim;  // [head_dim]
      const Real q_norm = std::sqrt(dot(q, q, dim));
      const std::size_t cold_end = keys.cold_end.empty() ? t + 1 : std::size_t(keys.cold_end[t]);
      const std::size_t first = std::size_t(shape.first_key(int(t)));  // the keys the query reads
      scores.assign(t + 1 - first, 0);
      scores_read.assign(t + 1 - first, 0);
      for (std::size_t j = first; j <= t; ++j) {
        const double* k = key_at(golden_k, j, kv);
        const double* read = key_at(j < cold_end ? keys.cold : keys.hot, j, kv);
        const Real score = dot(q, k, dim), error = dot_of_difference(q, read, k, dim);
        const double relative = relative_error(error, q_norm * std::sqrt(dot(k, k, dim)));
        qk_sum += relative;
        ++pairs;
        if (relative > d.qk_max) {
          d.qk_max = relative;
          d.qk_max_t = int(t);
          d.qk_max_j = int(j);
        }
        scores[j - first] = double(shape.score(score));
        scores_read[j - first] = double(shape.score(score + error));
      }
      const double kl = kl_divergence_of_logits(scores.data(), scores_read.data(), t + 1 - first);
      kl_sum += kl;
      if (kl > d.attention_kl_max) {
        d.attention_kl_max = kl;
        d.attention_kl_max_t = int(t);
      }
    }
    d.qk_mean = double(qk_sum / Real(pairs));
    d.attention_kl_mean = double(kl_sum / Real(T));
  }
  return out;
}

}  // namespace kvfid::ref
