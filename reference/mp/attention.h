#pragma once
// Causal multi-head attention over every position at once. Query head h reads KV head
// config.kv_head_of(h); scores q.k_j / sqrt(head_dim) for j <= t, softmax, then the
// probability-weighted sum of values.
#include "reference/model/config.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid {

// q: [tokens, n_heads, head_dim]; k, v: [tokens, n_kv_heads, head_dim].
// probs: [n_heads, tokens, tokens], exact zeros above the diagonal;
// out: [tokens, n_heads * head_dim]. All results at the arithmetic's precision.
void causal_attention(MpArray& probs, MpArray& out, const MpArray& q, const MpArray& k, const MpArray& v, int tokens,
                      const ModelConfig& config, const MpArith& arith, int threads);

}  // namespace kvfid
