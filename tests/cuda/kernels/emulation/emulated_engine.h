#pragma once
// The CUDA engine's own host code and kernels (cuda/kernels/*.cu) compiled as C++, its
// launches run by the kernel emulation (emulated_launch.h): kvfid_engine_emulated, the
// engine's CPU objects (kvfid_engine_core) with these in place of the device code, where
// Backend::cuda is this engine. The GPU tests (tests/cuda/gpu) linked to it compare the
// CUDA engine's code with the twin without a GPU (Emulated.GpuEngine.*, and
// tools/gpu/emulate.sh).
#include "tests/cuda/kernels/emulation/emulated_launch.h"

#define KVFID_LAUNCH(grid, block, shared, ...) \
  ::kvfid::test::emulated_kernel(grid, block, shared, [](auto&&... a) { __VA_ARGS__(a...); })
