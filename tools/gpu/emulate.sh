#!/usr/bin/env bash
# The GPU tests (tests/cuda/gpu/gpu_engine_test.cpp) against the CUDA engine's own code
# run on the CPU: cuda/kernels/*.cu compiled as C++, each launch's blocks run by the
# kernel emulation (tests/cuda/kernels/emulation), compared with the twin bit for bit.
# For machines without a GPU; slow (a block's 256 threads are fibers on one core): a
# test takes from seconds to tens of minutes.
#   usage: tools/gpu/emulate.sh [GTEST_FILTER]     (default GpuEngine.*)
# (CI runs two short ones of these, registered as Emulated.GpuEngine.*.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
filter=${1:-GpuEngine.*}
tools/setup default >/dev/null
exec build/default/tests/cuda/emulated_gpu_engine_test --gtest_filter="$filter"
