#pragma once
// Op map (projection; docs/ops.md): reference reference/mp/projection.h | shared cuda/common/row_dot.h, warp_reduce.h | kernel matvec_kernel | twin matvec() | tests EngineWarpReduce.*, EngineTwinReference.*
// The one reduction tree of the engine: the warp butterfly. With 32 lane values,
// for offset 16, 8, 4, 2, 1: lane[i] = op(lane[i], lane[i ^ offset]).
// On the device that is __shfl_xor_sync; on the host the same operations in the same
// order over an array. Every lane ends with the same value (IEEE + is commutative),
// and the engine reads lane 0. Its value only needs lanes i < offset at each level,
// so the host model computes those: lane[i] = op(lane[i], lane[i + offset]), i < offset
// -- exactly the operands, in the same argument order, lane 0 sees on the device.
#include "reference/numeric/ieee.h"

namespace kvfid::engine::num {
using namespace kvfid::ref::num;  // the numeric core's conversions
using namespace kvfid::ref;  // the specification's names: the layer below

inline constexpr int kWarp = 32;

struct Add {
  KVFID_HD float operator()(float a, float b) const { return a + b; }
};
struct Max {
  KVFID_HD float operator()(float a, float b) const { return max(a, b); }
};

// Host model: reduces lanes[0..31] in place; returns lane 0's final value.
template <class Op>
inline float butterfly_host(float* lanes, Op op = Op()) {
  for (int offset = kWarp / 2; offset >= 1; offset /= 2)
    for (int i = 0; i < offset; ++i) lanes[i] = op(lanes[i], lanes[i + offset]);
  return lanes[0];
}

// KVFID_EMULATED_DEVICE: the CPU suite's kernel emulation (tests/cuda/kernels/emulation).
#if defined(__CUDACC__) || defined(KVFID_EMULATED_DEVICE)
template <class Op>
__device__ __forceinline__ float butterfly_device(float v, Op op = Op()) {
  for (int offset = kWarp / 2; offset >= 1; offset /= 2) v = op(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset));
  return v;
}
#endif

}  // namespace kvfid::engine::num
