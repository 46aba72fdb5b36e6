#include "reference/mp/time_estimate.h"

namespace kvfid::ref {

GoldenWork golden_work(const ModelConfig& c, int tokens) {
  const double T = tokens, d = c.dim, q = c.q_dim(), kv = c.kv_dim(), hidden = c.hidden;
  const double per_layer = d * (q + 2 * kv) + q * d + 3 * d * hidden;  // wq, wk, wv, wo, w1, w2, w3
  GoldenWork w;
  w.weight_tokens = (c.n_layers * per_layer + double(c.vocab) * d) * T;
  // Token t attends to t + 1 keys: T (T + 1) / 2 pairs, head_dim products each for q.k and for p.v.
  w.attention_macs = double(c.n_layers) * c.n_heads * 2.0 * c.head_dim * (T * (T + 1) / 2);
  w.cpu_seconds = w.weight_tokens * kGoldenCpuSecondsPerWeightToken + w.attention_macs * kGoldenCpuSecondsPerAttentionMac;
  return w;
}

}  // namespace kvfid::ref
