#!/usr/bin/env bash
# Times this tree's dense GEMM against another source tree's in the same device call, since
# timings compare only within one call. Prepare the other tree first, e.g.
#   git archive HEAD~1 | tar -x -C .prev      (and carry .prev to the device machine)
#   bench/ab_compare.sh OTHER_TREE "SHAPE[,SHAPE...]" "M[,M...]" [LABEL=ENV ...]
# Each LABEL=ENV runs this tree once more with the environment settings in ENV
# (space-separated, e.g. "ws128=MARLINRT_DENSE_MMA=wgmma MARLINRT_DENSE_TILE=128x128").
# Prints one line per (shape, M): median us of the other tree, this tree and each variant.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
other=$1 shapes=$2 ms=$3
shift 3
out=${OUT:-/tmp/marlinrt-out}/ab
mkdir -p "$out"
(cd "$other" && cmake --preset release -G Ninja >"$out/other-build.log" 2>&1 &&
  cmake --build --preset release -j16 >>"$out/other-build.log" 2>&1) ||
  { tail -20 "$out/other-build.log"; exit 1; }
# run LABEL BINARY [ENV...]: the bench table of one binary, as "shape M us" lines.
run() {
  local label=$1 binary=$2
  shift 2
  env MARLINRT_CACHE_DIR="/tmp/marlinrt-ab-$label" "$@" "$binary" bench dense --shapes "$shapes" \
    --m "$ms" --dtype bf16 --out "$out/$label" >"$out/$label.log" 2>&1
  grep -E "^[^ ].* bf16 " "$out/$label.log" | grep -v "same-size" |
    awk '{for (i = 4; i <= NF; ++i) if ($i == "bf16") print $(i - 3) "x" $(i - 2), $(i - 1), $(i + 1)}' \
      >"$out/$label.txt"
}
run other "$other/build/release/tools/marlinrt"
run this build/release/tools/marlinrt
labels=(other this)
for variant in "$@"; do
  label=${variant%%=*}
  # shellcheck disable=SC2086
  run "$label" build/release/tools/marlinrt ${variant#*=}
  labels+=("$label")
done
header="ab shape M"
for l in "${labels[@]}"; do header+=" $l"; done
echo "$header"
paste -d' ' $(for l in "${labels[@]}"; do echo "$out/$l.txt"; done) |
  awk -v n=${#labels[@]} '{line = "ab " $1 " " $2; for (i = 0; i < n; ++i) line = line " " $(3 + 3 * i); print line}'
