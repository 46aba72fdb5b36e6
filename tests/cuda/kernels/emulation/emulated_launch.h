#pragma once
// Runs a kernel's blocks on the CPU (cuda_runtime.h of this folder says what is
// emulated): blocks one after another, a block's threads as fibers on the calling
// thread, each run until it reaches __syncthreads, a warp's __shfl_xor_sync, or its end.
// A barrier releases when every fiber of the block (of the warp) that has not ended has
// reached it, as on the GPU, where ended threads no longer take part. The scheduling is
// deterministic, so a race in a kernel shows as a wrong value, not a flaky one.
#include <cstddef>
#include <functional>

// cuda/common/warp_reduce.h then defines butterfly_device over this __shfl_xor_sync.
#define KVFID_EMULATED_DEVICE 1

#include <cuda_runtime.h>  // this folder's: include this header before any kernel header

namespace kvfid::engine::kernels {
inline constexpr std::size_t kEmulatedSharedFloats = 1 << 16;  // dynamic shared memory a block may use
extern float smem[];
}  // namespace kvfid::engine::kernels

namespace kvfid::test {

// Runs kernel() as grid x block threads (dynamic shared memory: shared_bytes, at most
// kEmulatedSharedFloats floats). Throws if a barrier can never release (some fibers wait
// at one barrier, others at another).
void emulated_launch(dim3 grid, dim3 block, std::size_t shared_bytes, const std::function<void()>& kernel);

// KVFID_LAUNCH's emulation (cuda/kernels/device_state.cuh): kernel(arguments...) over
// the grid, the arguments copied as a launch copies them.
template <class Kernel>
struct EmulatedKernel {
  dim3 grid, block;
  std::size_t shared;
  Kernel kernel;
  template <class... Args>
  void operator()(Args... args) const {
    emulated_launch(grid, block, shared, [&] { kernel(args...); });
  }
};
template <class Kernel>
EmulatedKernel<Kernel> emulated_kernel(dim3 grid, dim3 block, std::size_t shared, Kernel kernel) {
  return {grid, block, shared, kernel};
}

}  // namespace kvfid::test
