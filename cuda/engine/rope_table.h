#pragma once
// Op map (RoPE; docs/ops.md): reference reference/mp/rope.h | shared cuda/common/rope.h, tables cuda/engine/rope_table.h | kernel rope_kernel, rope_store_kernel | twin rope() | tests MpKernels.Rope*, RopeConvention*
// RoPE cos/sin tables, computed once on the host in float64 and rounded to FP32, so
// the twin and the GPU rotate with identical numbers. Pair i of a head (i < head_dim/2)
// rotates by angle pos * theta^(-2i/head_dim) (Llama 3 scaled when the config says so:
// reference/model/rope_scaling.h); which two dimensions form pair i
// depends on the style (num::rope_dims in cuda/common/rope.h). head_dim here is the width
// RoPE turns (ModelConfig::rope_head_dim: latent attention's rope part).
#include <vector>

#include "reference/model/config.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

struct RopeTable {
  int pairs = 0;       // head_dim / 2
  int positions = 0;
  std::vector<float> cos;  // [positions, pairs]
  std::vector<float> sin;  // [positions, pairs]
};

RopeTable make_rope_table(const ModelConfig& config, int positions);

}  // namespace kvfid::engine
