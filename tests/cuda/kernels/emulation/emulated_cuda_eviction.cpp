// cuda/kernels/cuda_eviction.cu compiled as C++ for the emulated CUDA engine (emulated_engine.h).
#include "tests/cuda/kernels/emulation/emulated_engine.h"

#include "cuda/kernels/cuda_eviction.cu"
