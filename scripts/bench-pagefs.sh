#!/usr/bin/env bash
# Builds and runs the pagefs benchmark (tests/bench/pagefs): PostgreSQL 15 on pagefs versus the
# local disk (pgbench), new branch to first query, and initdb. Prints its tables and keeps a copy.
# Needs root (FUSE mounts; PostgreSQL runs as the postgres user) and postgresql-15.
#
#   scripts/bench-pagefs.sh [--quick] [--only pgbench|branch|initdb] [--dir DIR]
#
# Arguments go to pagefs-bench unchanged (--quick: CI smoke run, < 90 s). The output is also
# written to $BENCH_OUT (default: build/bench/pagefs-bench-<UTC time>.txt).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-pagefs.sh: run as root (FUSE mounts, PostgreSQL as the postgres user)" >&2
  exit 2
fi

cmake -S "$root" -B "$build" -G Ninja >/dev/null
ninja -C "$build" -j "${BUILD_JOBS:-2}" pagefs-bench pagefs pgbranch-pageserver

out="${BENCH_OUT:-$build/bench/pagefs-bench-$(date -u +%Y%m%dT%H%M%SZ).txt}"
mkdir -p "$(dirname "$out")"
echo "Writing the results to $out"
# Tables go to stdout (and the file); progress lines to stderr only.
PGBRANCH_BIN_DIR="$build/bin" "$build/bin/pagefs-bench" "$@" | tee "$out"
exit "${PIPESTATUS[0]}"
