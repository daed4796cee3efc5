#!/usr/bin/env bash
# Builds and runs the local-mode benchmark (tests/bench/local): wake from zero, new branch to
# first query through the proxy, proxy overhead (pgbench -S). Prints its tables and keeps a copy.
# Needs root (FUSE mounts; PostgreSQL runs as the postgres user) and postgresql-15.
#
#   scripts/bench-local.sh [--quick] [--only wake|branch|proxy|depth|write|promote] [--dir DIR]
#
# Arguments go to local-bench unchanged (--quick: CI smoke run, < 2 min). The output is also
# written to $BENCH_OUT (default: build/bench/pagefs-bench-<UTC time>.txt).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-local.sh: run as root (FUSE mounts, PostgreSQL as the postgres user)" >&2
  exit 2
fi

cmake -S "$root" -B "$build" -G Ninja >/dev/null
ninja -C "$build" -j "${BUILD_JOBS:-2}" local-bench pgbranch pgbranch-pageserver pgbranch-proxy \
  pgbranch-compute pagefs

out="${BENCH_OUT:-$build/bench/local-bench-$(date -u +%Y%m%dT%H%M%SZ).txt}"
mkdir -p "$(dirname "$out")"
echo "Writing the results to $out"
# Tables go to stdout (and the file); progress lines to stderr only.
PGBRANCH_BIN_DIR="$build/bin" "$build/bin/local-bench" "$@" | tee "$out"
exit "${PIPESTATUS[0]}"
