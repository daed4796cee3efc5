#!/usr/bin/env bash
# Builds and runs the pageserver benchmark (tests/bench/pageserver), printing its tables and
# keeping a copy of them.
#
#   scripts/bench.sh [--quick] [--only branch|read|commit|space] [--dir DIR]
#
# Arguments go to pageserver-bench unchanged. The output is also written to
# $BENCH_OUT (default: build/bench/pageserver-bench-<UTC time>.txt).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

cmake -S "$root" -B "$build" -G Ninja >/dev/null
ninja -C "$build" -j "${BUILD_JOBS:-2}" pageserver-bench pgbranch-pageserver

out="${BENCH_OUT:-$build/bench/pageserver-bench-$(date -u +%Y%m%dT%H%M%SZ).txt}"
mkdir -p "$(dirname "$out")"
echo "Writing the results to $out"
# Tables go to stdout (and the file); progress lines to stderr only.
PGBRANCH_BIN_DIR="$build/bin" "$build/bin/pageserver-bench" "$@" | tee "$out"
exit "${PIPESTATUS[0]}"
