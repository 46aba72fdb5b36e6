#include "reference/mp/time_estimate.h"

namespace kvfid::ref {

GoldenWork golden_work(const ModelConfig& c, int tokens) {
  const double T = tokens, d = c.dim, q = c.q_dim(), kv = c.kv_dim(), hidden = c.hidden;
  const LatentAttention& a = c.mla;
  // wq, wk, wv (latent attention: wq_a, wq, wkv_a, wkv_b), wo, w1, w2, w3
  const double attention = a.active() ? (a.q_lora_rank > 0 ? d * a.q_lora_rank : 0) + double(c.q_in_dim()) * q +
                                            d * (a.kv_lora_rank + a.rope_dim) +
                                            double(a.kv_lora_rank) * c.n_heads * (c.nope_dim() + a.v_head_dim)
                                      : d * (q + 2 * kv);
  const double per_layer = attention + double(c.attn_out_dim()) * d + 3 * d * hidden;
  GoldenWork w;
  w.weight_tokens = (c.n_layers * per_layer + double(c.vocab) * d) * T;
  // Token t attends to t + 1 keys: T (T + 1) / 2 pairs, head_dim products for q.k and v_head_dim for p.v.
  w.attention_macs = double(c.n_layers) * c.n_heads * double(c.head_dim + c.v_head_dim()) * (T * (T + 1) / 2);
  w.cpu_seconds = w.weight_tokens * kGoldenCpuSecondsPerWeightToken + w.attention_macs * kGoldenCpuSecondsPerAttentionMac;
  return w;
}

}  // namespace kvfid::ref
