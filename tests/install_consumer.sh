#!/usr/bin/env bash
# Installs a built marlinrt tree into a temporary prefix, then configures, builds
# and runs examples/consumer against it: proves that the exported CMake package
# (find_package(marlinrt) + marlinrt::marlinrt) works for a separate project.
#
#   tests/install_consumer.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BUILD_DIR SOURCE_DIR" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/marlinrt-install-XXXXXX")
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >"$work/install.log" 2>&1 || {
  cat "$work/install.log" >&2
  echo "install_consumer: cmake --install failed" >&2
  exit 1
}
test -f "$work/prefix/include/marlinrt/marlinrt.hpp"
test -f "$work/prefix/include/marlinrt/marlinrt.h"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S "$source_dir/examples/consumer" -B "$work/build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$work/prefix"
cmake --build "$work/build"

output=$("$work/build/marlinrt_consumer")
echo "$output"
version=$(sed -n 's/^project(marlinrt VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
if ! grep -q "^marlinrt ${version} " <<<"$output"; then
  echo "install_consumer: expected the consumer to report marlinrt ${version}" >&2
  exit 1
fi
echo "install_consumer: ok (marlinrt ${version} installed, found and linked)"
