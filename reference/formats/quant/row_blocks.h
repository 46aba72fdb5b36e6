#pragma once
// Blocks along a row whose length n need not be a multiple of the block B -- a token's
// K/V row of kv_dim = n_kv_heads * head_dim elements (16 on tiny-qwen2, 32 on
// stories260K, against blocks of 32 or 64). The row gets ceil(n / B) blocks; the last
// one, when n is not a multiple of B, is filled up by repeating the row's last real
// element, its codes are stored like any block's (they count in the cache's bytes),
// and decoding writes only the real elements. The one rule, used by the reference's
// store (reference/mp/kv_store.cpp) and by the engine's (cuda/common/kv_encode.h,
// kv_codes.h), so the twin, the CUDA kernels and the reference cannot disagree.
//
// Why repeat an element rather than pad with zeros: a repeat changes none of the block
// statistics the registered codecs derive their scales from -- amax (q8_0, int8/int4);
// q4_0's signed extreme, the first element of largest magnitude (ggml's choice: a
// repeat comes later and equals the last element anyway, so the first occurrence stays
// the same element); the min and max of the asymmetric formats (whose pinned ends are
// again their first occurrences). So the real elements get exactly the codes a codec
// written for a partial block would give them, and their error bounds are those of a
// block holding only them (codec.h's kRepeatInvariant). Zero padding would move the
// asymmetric formats' minimum or maximum to 0 and coarsen their step. For any other
// codec (the tq formats, whose norm counts the repeats) the padded block is still an
// ordinary block of finite values, so its per-element round-trip bound holds.
// A NaN last element (out of every codec's domain) repeats as NaN, which the codecs
// treat as they treat any NaN element.
#include <cstddef>

#include "reference/numeric/hd.h"

namespace kvfid::ref::quant {

// Blocks covering a row of n elements.
KVFID_HD constexpr int row_block_count(int n, int block) { return (n + block - 1) / block; }

// How many of block b's elements are the row's (block, except for a padded last block).
KVFID_HD constexpr int real_elements(int n, int block, int b) {
  const int left = n - b * block;
  return left < block ? left : block;
}

// Block b's input: x[i] = row[b * block + i], or row[n - 1] past the row's end.
// row: [n] FP32; x: [block].
KVFID_HD void gather_padded_block(const float* row, int n, int block, int b, float* x) {
  const int real = real_elements(n, block, b);
  for (int i = 0; i < block; ++i) x[i] = row[i < real ? b * block + i : n - 1];
}

}  // namespace kvfid::ref::quant
