#!/usr/bin/env bash
# One device-machine call: build, [gpu] tests, dense benchmark, optional Nsight Compute
# profile. Logs go under $OUT; a short table is printed last. BENCH_TIMEOUT (s, default 420)
# bounds each benchmark.
#   bench/device_session.sh [--no-tests] [--sanitize] [--bench "ARGS"] [--ncu "NxK M"] [--ncu-source "NxK M"] [--sweep "SHAPES MS CONFIG..."]...
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-/tmp/marlinrt-out}
mkdir -p "$out"
tests=1 sanitize=0 bench_args=() ncu_cases=() ncu_source=() sweep_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-tests) tests=0 ;;
    --sanitize) sanitize=1 ;;
    --bench) bench_args+=("$2"); shift ;;
    --ncu) ncu_cases+=("$2"); shift ;;
    --ncu-source) ncu_source+=("$2"); shift ;;
    --sweep) sweep_args+=("$2"); shift ;;
  esac
  shift
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
start=$(date +%s)
cmake --preset release -G Ninja >"$out/build.log" 2>&1 &&
  cmake --build --preset release -j16 >>"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
if [ $tests = 1 ]; then
  t0=$(date +%s)
  build/release/tests/marlinrt_tests "[gpu]" >"$out/gpu-tests.log" 2>&1
  echo "gpu tests: rc $? in $(( $(date +%s) - t0 )) s; $(tail -3 "$out/gpu-tests.log" | tr '\n' ' ')"
fi
if [ $sanitize = 1 ]; then
  for tool in memcheck racecheck; do
    t0=$(date +%s)
    timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 \
      build/release/tests/marlinrt_tests "[sanitize]" >"$out/sanitize-$tool.log" 2>&1
    echo "compute-sanitizer $tool: rc $? in $(( $(date +%s) - t0 )) s; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitize-$tool.log" | tail -1)"
  done
fi
export MARLINRT_CACHE_DIR=/tmp/marlinrt-cache
for c in "${ncu_cases[@]}"; do
  read -r shape m <<<"$c"
  ncu --clock-control none -k regex:marlinrt_kernel --launch-skip 250 --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats \
    --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis --section InstructionStats \
    --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__throughput.avg.pct_of_peak_sustained_elapsed,regex:sm__inst_executed_pipe_(alu|fma|fmaheavy|fp16|lsu|uniform|tensor_op_hmma)\.avg\.pct_of_peak_sustained_active,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum" \
    build/release/tools/marlinrt bench dense --shapes "$shape" --m "$m" --dtype bf16 \
    --warmup 300 --reps 20 --out /tmp/ncu-bench >"$out/ncu-$shape-$m.txt" 2>&1 || true
  grep -E "Duration|Executed Ipc A|Issue Slots Busy|Executed Instructions  |DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Issued Ipc|Warp Cycles Per Issued|No Eligible|Block Limit" \
    "$out/ncu-$shape-$m.txt" | sed "s/^/  ncu $shape M=$m: /" | head -14
  grep -E "pipe_|lts__throughput|wavefronts_mem_shared" "$out/ncu-$shape-$m.txt" | sed "s/^/  ncu $shape M=$m: /"
  grep -E "issue_stalled" "$out/ncu-$shape-$m.txt" | sort -k3 -g -r | head -7 | sed "s/^/  ncu $shape M=$m: /"
done
# Stall sampling per SASS instruction (where the warps wait), as a CSV under $OUT.
for c in "${ncu_source[@]}"; do
  read -r shape m <<<"$c"
  ncu --clock-control none -k regex:marlinrt_kernel --launch-skip 250 --launch-count 1 \
    --section SourceCounters --print-source sass --csv --page source \
    build/release/tools/marlinrt bench dense --shapes "$shape" --m "$m" --dtype bf16 \
    --warmup 300 --reps 20 --out /tmp/ncu-bench >"$out/source-$shape-$m.csv" 2>&1 || true
  echo "source counters $shape M=$m: $(wc -l <"$out/source-$shape-$m.csv") lines"
done
for b in "${bench_args[@]}"; do
  # shellcheck disable=SC2086
  timeout "${BENCH_TIMEOUT:-420}" build/release/tools/marlinrt bench dense --out "$out" $b >"$out/bench.log" 2>&1
  echo "bench rc $?"
  cat "$out/bench.log" | tail -90
done
for w in "${sweep_args[@]}"; do
  # shellcheck disable=SC2086
  OUT=$out bench/tile_sweep.sh $w
done
# Only a few files come back from the device machine: keep the table files loose, pack the rest.
(cd "$out" && ls | grep -vE '^(dense\.csv|logs\.tgz)$' | tar czf logs.tgz -T - --remove-files)
