#pragma once
// The shape of one query's attention, averaged over heads: its entropy (how spread the
// weights are; ln(t+1) when uniform over t+1 keys, 0 when on one key) and the weight on
// the newest key (the query's own token; 1/(t+1) when uniform). Long-context drift
// shows in both: a cache that rounds keys flattens or sharpens the distribution.
#include "reference/golden/taps.h"
#include "reference/metrics/attention_shape.h"
#include "reference/model/config.h"

namespace kvfid::ref {

struct AttentionSummary {
  double entropy = 0;        // mean over heads of -sum_j p_j ln p_j, nats
  double newest_weight = 0;  // mean over heads of p_t, the weight on the newest key
};

// -sum_j p_j ln p_j over n weights (p_j >= 0); zero weights contribute 0.
double attention_entropy(const double* p, int n);

// One query's weights per head: head h's over keys 0..keys-1 at rows + h * stride (the
// newest key last), averaged over heads.
AttentionSummary attention_summary_from_rows(const double* rows, std::size_t stride, int heads, int keys);

// Row t of an attn.probs tap [n_heads, T, T] (keys 0..t), averaged over heads.
// Throws std::invalid_argument for a tap that is not [n_heads, T, T] or t outside [0, T).
AttentionSummary attention_summary_from_probs(const TapTensor& probs, int t);

// The attention of the query at position keys-1 in layer `layer` recomputed in double
// from its query and the cached keys: p_j = softmax_j(score(q . k_j)) over the keys it
// reads (attention_shape.h's rule: the model's scale and soft-cap, the layer's window;
// keys before the window weigh 0), query head h reading KV head config.kv_head_of(h).
//   q [n_heads, head_dim]          the query row
//   k [keys, n_kv_heads, head_dim] the cached keys 0..keys-1, as the cache holds them
// Every operation is in double, so the result reflects the query and the stored keys
// alone, not the arithmetic of whichever softmax produced the engine's output.
AttentionSummary attention_summary_from_qk(const double* q, const double* k, int keys, const ModelConfig& config,
                                           int layer);

}  // namespace kvfid::ref
