#!/usr/bin/env bash
# On the GPU machine, over a build folder made elsewhere with `cmake --preset gpu`
# (static MPFR/GMP, gtest and cudart; nothing to install): the device summary, the
# gpu-labelled tests, compute-sanitizer memcheck and racecheck on a GPU test binary,
# and the decode benchmark. Prints a summary to stdout, and to $OUT/summary.txt when
# OUT is set.
#   usage: tools/gpu/run.sh [BUILD_DIR]        (default build/gpu)
#   env:   KVFID_COMMIT  the commit the build is of (else BUILD_DIR/COMMIT, else git)
#          KVFID_STORIES path of stories260K.bin (its goldens are checked when present)
#          BENCH_REPEATS repeats per benchmark figure (default 20)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${1:-build/gpu}
out=${OUT:-}
logs=$(mktemp -d)
summary=$logs/summary.txt
say() { echo "$*" | tee -a "$summary"; }

commit=${KVFID_COMMIT:-$(cat "$build/COMMIT" 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)}
say "kvfid GPU run"
say "commit: $commit"
say "build: $build"
if command -v nvidia-smi >/dev/null; then
  say "device: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | head -1)"
else
  say "device: nvidia-smi not found"
fi

overall=0
test_binary=$build/tests/cuda/gpu_engine_test
[ -x "$test_binary" ] || { say "FAIL: $test_binary missing (build with: cmake --preset gpu && cmake --build --preset gpu)"; overall=1; }

# The gpu-labelled tests: through ctest when it is there and the build's paths resolve
# here, else each tests/cuda/gpu_* binary directly (gtest's own runner).
if command -v ctest >/dev/null && ctest --test-dir "$build" -N -L gpu >/dev/null 2>&1 &&
   [ "$(ctest --test-dir "$build" -N -L gpu | grep -c 'Test *#')" -gt 0 ]; then
  ctest --test-dir "$build" -L gpu --output-on-failure >"$logs/gpu_tests.log" 2>&1
  rc=$?
  say "gpu tests (ctest -L gpu): $([ $rc = 0 ] && echo PASS || echo FAIL) -- $(grep -E 'tests passed|tests failed' "$logs/gpu_tests.log" | tail -1)"
else
  rc=0
  for bin in "$build"/tests/cuda/gpu_*; do
    [ -x "$bin" ] || continue
    "$bin" >>"$logs/gpu_tests.log" 2>&1 || rc=1
  done
  say "gpu tests (gtest binaries): $([ $rc = 0 ] && echo PASS || echo FAIL) -- $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$logs/gpu_tests.log" | tr '\n' ' ')"
fi
# On the GPU machine a skipped GPU test means the device was not usable: a failure here.
if grep -qiE '\*\*\*Skipped|^\[  SKIPPED \]' "$logs/gpu_tests.log"; then
  say "  FAIL: GPU tests skipped: $(grep -m1 -iE 'Skipped|unavailable|no usable|not built' "$logs/gpu_tests.log")"
  rc=1
fi
[ $rc = 0 ] || overall=1

# compute-sanitizer on the shapes test (every dense kernel, several launch shapes; a few
# seconds natively, minutes under the tools) and the latent fork test (the latent
# kernels and the listed-key attention of both latent paths).
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$sanitizer" ] && [ -x "$test_binary" ]; then
  for tool in memcheck racecheck; do
    "$sanitizer" --tool "$tool" --error-exitcode 3 "$test_binary" --gtest_filter='GpuEngine.MatchesTwinAcrossShapes:GpuEngine.LogprobsMatchTwin:GpuEngine.DecodeHeadSpreadChangesNoBit:GpuEngine.LatentForkAndCacheValuesMatchTwin' \
      >"$logs/$tool.log" 2>&1
    rc=$?
    say "compute-sanitizer $tool: $([ $rc = 0 ] && echo CLEAN || echo "FAIL (exit $rc)") -- $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$logs/$tool.log" | tail -1)"
    [ $rc = 0 ] || overall=1
  done
else
  say "compute-sanitizer: not available here ($sanitizer)"
fi

# Every committed golden on the GPU: the CUDA engine's taps equal the twin's bit for bit
# (one-shot prefill and token-by-token decode, every weight/KV format), and the GPU
# passes `kvfid check`.
kvfid=$build/bin/kvfid
stories=${KVFID_STORIES:-../shared/models/stories260K.bin}
if [ -x "$kvfid" ]; then
  bitwise_fail=0 check_fail=0 runs=0
  # Goldens of reduced real shapes need their models, generated from recipes.
  tools/fixtures/make_generated.sh "$kvfid" >>"$logs/fixtures.log" 2>&1 || say "  could not generate fixtures/generated/"
  for manifest in golden/*/*/manifest.json; do
    dir=$(dirname "$manifest")
    model=$(sed -n 's/^ *"model": "\(.*\)",$/\1/p' "$manifest")
    case "$model" in *stories260K.bin) model=$stories ;; esac
    [ -e "$model" ] || { say "  skip $dir: model $model not here"; continue; }
    prompt=$(sed -n 's/^ *"command": ".*--prompt \([^ ]*\).*/\1/p' "$manifest")
    for fmt in f32 f16 bf16; do
      for chunk in 0 1; do
        runs=$((runs + 1))
        "$kvfid" run --model "$model" --prompt "$prompt" --engine twin --weights $fmt --kv $fmt --chunk $chunk \
          --out "$logs/twin.safetensors" >>"$logs/fixtures.log" 2>&1 &&
        "$kvfid" run --model "$model" --prompt "$prompt" --engine cuda --weights $fmt --kv $fmt --chunk $chunk \
          --out "$logs/cuda.safetensors" >>"$logs/fixtures.log" 2>&1 &&
        "$kvfid" bitwise --expected "$logs/twin.safetensors" --actual "$logs/cuda.safetensors" >>"$logs/fixtures.log" 2>&1 ||
          { bitwise_fail=$((bitwise_fail + 1)); echo "DIFFERS: $dir $fmt chunk $chunk" >>"$logs/fixtures.log"; }
      done
      "$kvfid" check --model "$model" --golden "$dir" --engine cuda --weights $fmt --kv $fmt >>"$logs/fixtures.log" 2>&1 ||
        { check_fail=$((check_fail + 1)); echo "CHECK FAILED: $dir $fmt" >>"$logs/fixtures.log"; }
    done
  done
  say "goldens: cuda == twin bitwise in $((runs - bitwise_fail))/$runs runs; kvfid check --engine cuda failed $check_fail times"
  [ $bitwise_fail = 0 ] && [ $check_fail = 0 ] && [ $runs -gt 0 ] || overall=1
else
  say "FAIL: $kvfid missing"
  overall=1
fi

bench=$build/bin/kvfid_decode_bench
if [ -x "$bench" ]; then
  # The real 0.5B and 7B shapes (FP16 weights and KV cache, random values).
  rc=0
  : >"$logs/bench.log"
  for shape in qwen2.5-0.5b qwen2.5-7b; do
    "$bench" "${BENCH_REPEATS:-20}" "$shape" >>"$logs/bench.log" 2>&1 || rc=$?
  done
  say "benchmark: $([ $rc = 0 ] && echo done || echo "FAIL (exit $rc)")"
  sed 's/^/  /' "$logs/bench.log" | tee -a "$summary"
  [ $rc = 0 ] || overall=1
else
  say "benchmark: $bench missing"
  overall=1
fi

say "overall: $([ $overall = 0 ] && echo PASS || echo FAIL)"
if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "$summary" "$out/summary.txt"
  for f in gpu_tests memcheck racecheck fixtures bench; do [ -f "$logs/$f.log" ] && cp "$logs/$f.log" "$out/$f.log"; done
fi
exit $overall
