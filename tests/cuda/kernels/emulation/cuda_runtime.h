#pragma once
// The CUDA kernels' code on the CPU, for the CPU suite: this header stands in for
// <cuda_runtime.h> in the emulated kernel tests only (their include path puts this folder
// first), so a kernel header compiles as plain C++ and emulated_launch.h runs its blocks.
// It provides what the engine's kernels use: the qualifiers (no-ops), the built-in
// indices (set per emulated thread), __syncthreads and __shfl_xor_sync (fiber barriers,
// emulated_launch.h), 16-byte vector loads and min. Dynamic shared memory
// (`extern __shared__ float smem[]`) is kvfid::engine::kernels::smem, defined by
// emulated_launch.cpp: blocks run one at a time. Static __shared__ arrays would be per
// thread here, so a kernel that declares one (log_softmax_kernel) is not emulated.
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};
struct uint4 {
  unsigned x, y, z, w;
};

// The running emulated thread's indices (emulated_launch.h sets them before it runs).
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

void __syncthreads();
float __shfl_xor_sync(unsigned mask, float v, int lane_mask);

inline int min(int a, int b) { return a < b ? a : b; }
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
