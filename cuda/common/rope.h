#pragma once
// Op map (RoPE; docs/ops.md): reference reference/mp/rope.h | shared cuda/common/rope.h, tables cuda/engine/rope_table.h | kernel rope_kernel, rope_store_kernel | twin rope() | tests MpKernels.Rope*, RopeConvention*
// RoPE arithmetic shared by the kernels and the twin; the cos/sin tables come from the
// host (cuda/engine/rope_table.h) so both use identical angles.
#include "reference/numeric/hd.h"

namespace kvfid::engine::num {

// The two dimensions of pair i: interleaved (2i, 2i+1), rotate_half (i, i + head_dim/2).
KVFID_HD void rope_dims(bool interleaved, int head_dim, int i, int& a, int& b) {
  a = interleaved ? 2 * i : i;
  b = interleaved ? 2 * i + 1 : i + head_dim / 2;
}

// One pair (a, b) rotated by the angle with cosine c and sine s:
// a' = a c - b s, b' = a s + b c; products rounded, then one add (never fused).
KVFID_HD void rope_pair(float& a, float& b, float c, float s) {
  const float na = a * c - b * s;
  const float nb = a * s + b * c;
  a = na;
  b = nb;
}

}  // namespace kvfid::engine::num
