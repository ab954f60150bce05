#!/usr/bin/env bash
# Times dense GEMM tile choices (MARLINRT_DENSE_TILE) on the device machine.
#   bench/tile_sweep.sh "SHAPE[,SHAPE...]" "M[,M...]" CONFIG...
# CONFIG: default, or a tile (KxN, KxN:B, KxN:B/T), an instruction (sync, wgmma:
# MARLINRT_DENSE_MMA) and/or a tile order (stripes, bands, bands:B: MARLINRT_DENSE_ORDER)
# joined by '+', e.g. wgmma+64x256+bands:8.
# Prints one line per (config, shape, M): median us from `marlinrt bench dense` (bf16).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shapes=$1 ms=$2
shift 2
out=${OUT:-/tmp/marlinrt-out}/sweep
mkdir -p "$out"
export MARLINRT_CACHE_DIR=${MARLINRT_CACHE_DIR:-/tmp/marlinrt-cache}
for cfg in "$@"; do
  unset MARLINRT_DENSE_TILE MARLINRT_DENSE_MMA MARLINRT_DENSE_ORDER
  for part in ${cfg//+/ }; do
    case $part in
      default) ;;
      sync | wgmma) export MARLINRT_DENSE_MMA=$part ;;
      stripes | bands*) export MARLINRT_DENSE_ORDER=$part ;;
      *) export MARLINRT_DENSE_TILE=$part ;;
    esac
  done
  for shape in ${shapes//,/ }; do
    name=${cfg//[:\/+]/_}
    log="$out/$name-$shape.log"
    build/release/tools/marlinrt bench dense --shapes "$shape" --m "$ms" --dtype bf16 \
      --out "$out/$name-$shape" >"$log" 2>&1
    grep -E "^$shape " "$log" | grep -v "same-size" | awk -v c="$cfg" '{printf "sweep %-10s %-12s M=%-5s %8s us\n", c, $1, $4, $6}'
    grep -m1 -iE "error|failed" "$log" | sed "s|^|sweep $cfg $shape: |"
  done
done
