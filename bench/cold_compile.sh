#!/usr/bin/env bash
# Cold NVRTC compile time of single dense specializations on one CPU core: each key is
# compiled by a fresh `marlinrt prebuild -j1` into an empty cache, pinned to core 0.
#   bench/cold_compile.sh KEY...
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for key in "$@"; do
  cache=$(mktemp -d)
  t0=${EPOCHREALTIME/./}
  report=$(MARLINRT_CACHE_DIR=$cache taskset -c 0 build/release/tools/marlinrt prebuild -j1 "$key")
  rc=$?
  ms=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
  printf 'cold compile, one core: %d.%03d s  rc %d  %s\n  %s\n' $((ms / 1000)) $((ms % 1000)) \
    "$rc" "$key" "${report%% (cache*}"
  rm -rf "$cache"
done
