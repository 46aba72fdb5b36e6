#pragma once
// The numeric core's host/device marker. The exact conversions and per-element codec
// arithmetic under reference/ are compiled by the reference, the CPU twin and the CUDA
// kernels alike (one definition, so the three cannot drift). KVFID_HD marks a function
// that host and device both compile; KVFID_ON_DEVICE is true only inside device compilation passes.
#if defined(__CUDACC__)
#define KVFID_HD __host__ __device__ __forceinline__
#else
#define KVFID_HD inline
#endif

#if defined(__CUDA_ARCH__)
#define KVFID_ON_DEVICE 1
#else
#define KVFID_ON_DEVICE 0
#endif
