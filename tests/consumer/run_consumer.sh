#!/usr/bin/env bash
# Installs kvfid from a build folder into a scratch prefix and builds and runs the
# consumer project (tests/consumer) against that installed package only.
# usage: run_consumer.sh BUILD_DIR SCRATCH_DIR
set -euo pipefail
build=$1 scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$here" -B "$scratch/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$scratch/prefix" \
  "${launcher[@]}" >/dev/null
cmake --build "$scratch/build" >/dev/null
ctest --test-dir "$scratch/build" --output-on-failure
