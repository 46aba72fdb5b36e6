#pragma once
// Interleaved RoPE (pairs (2i, 2i+1), llama2.c) and rotate-half RoPE (pairs
// (i, i + head_dim/2), HF) rotate pair i by the same angle; they differ only in
// which dimensions form a pair. Reordering each head's q and k rows so that 2i
// lands at i and 2i+1 at i + head_dim/2 turns one into the other exactly.
#include "reference/model/model.h"

namespace kvfid::ref {

// Destination row within a head of the source row `row_in_head` (interleaved order).
int rotate_half_position(int row_in_head, int head_dim);

// The same model for rotate-half RoPE: wq, wk (and bq, bk) rows permuted per head,
// every value unchanged. Logits are identical; q and k taps come out permuted per
// head. A model already in rotate-half order is returned unchanged.
Model permute_to_rotate_half(const Model& model);

}  // namespace kvfid::ref
