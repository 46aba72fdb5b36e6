#pragma once
// Code shared by the CUDA kernels and the CPU twin. KVFID_HD marks a function that
// both compile; KVFID_ON_DEVICE is true only inside device compilation passes.
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
