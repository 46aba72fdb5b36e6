#!/usr/bin/env bash
# The GPU tests (tests/cuda/gpu/gpu_engine_test.cpp) against the CUDA engine's own code
# run on the CPU: cuda/kernels/*.cu compiled as C++, each launch's blocks run by the
# kernel emulation (tests/cuda/kernels/emulation), compared with the twin bit for bit.
# For machines without a GPU; slow (a block's 256 threads are fibers on one core): a
# test takes from under a minute to tens of minutes. Not part of tools/test.
#   usage: tools/gpu/emulate.sh [GTEST_FILTER]     (default GpuEngine.*)
#   env:   KVFID_EMULATE_BUILD  the build folder (default build/emulated)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${KVFID_EMULATE_BUILD:-build/emulated}
filter=${1:-GpuEngine.*}
if [ ! -f "$build/build.ninja" ]; then
  cmake --preset default -B "$build" -DKVFID_CUDA=OFF -DKVFID_EMULATED_CUDA=ON >"$build.configure.log" 2>&1 ||
    { echo "tools/gpu/emulate.sh: configuring $build failed; see $build.configure.log" >&2; exit 2; }
fi
cmake --build "$build" --target emulated_gpu_engine_test -j "$(nproc)" >"$build.build.log" 2>&1 ||
  { echo "tools/gpu/emulate.sh: building failed; see $build.build.log" >&2; exit 2; }
exec "$build/tests/cuda/emulated_gpu_engine_test" --gtest_filter="$filter"
