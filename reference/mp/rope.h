#pragma once
// Op map (RoPE; docs/ops.md): reference reference/mp/rope.h | shared cuda/common/rope.h, tables cuda/engine/rope_table.h | kernel rope_kernel, rope_store_kernel | twin rope() | tests MpKernels.Rope*, RopeConvention*
// Rotary position embedding: pair i of a head at position t turns by t f_i, with
// f_i = theta^(-2i/head_dim), Llama 3 scaled when `scaling` is active
// (reference/model/rope_scaling.h); (a, b) -> (a cos - b sin, a sin + b cos).
#include "reference/model/config.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

struct RopeTable {
  int half = 0;  // head_dim / 2
  MpArray cos;   // [tokens, half]
  MpArray sin;   // [tokens, half]
  MpArray cos_radii, sin_radii;  // [tokens, half] (enclosure.h), or empty when not tracked
};

// theta: one exact value. Row t holds position first_position + t, for t < tokens. With
// `radii`, the table's entries carry their radii.
RopeTable make_rope_table(int tokens, int head_dim, mpfr_srcptr theta, const RopeScaling& scaling, const MpArith& arith,
                          bool radii = false, int first_position = 0);

// x: [tokens, heads, head_dim], rotated in place; x_radii likewise when set (the table
// must then have radii).
void apply_rope(MpArray& x, const RopeTable& table, int tokens, int heads, RopeStyle style, const MpArith& arith,
                int threads, MpArray* x_radii = nullptr);

}  // namespace kvfid::ref
