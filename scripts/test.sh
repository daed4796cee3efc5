#!/usr/bin/env bash
# README command 2: installs what is needed, builds, and runs every test tier.
#   tier 1 (label unit):    GoogleTest unit tests, fakes for clocks and filesystems
#   tier 2 (label storage): real processes - pageserver crash test, pagectl round trip with a
#                           real PostgreSQL 15 data directory, gRPC API faults
# Then a quick benchmark smoke run, so the benchmark program cannot rot (numbers: scripts/bench.sh).
# Environment: PGBRANCH_BUILD_DIR (default build), CCACHE_DIR (default ~/.cache/pgbranch/ccache).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${PGBRANCH_BUILD_DIR:-$ROOT/build}

start=$(date +%s)
PGBRANCH_BUILD_DIR=$BUILD "$ROOT/scripts/build.sh"
echo "build: $(( $(date +%s) - start ))s"

ctest --test-dir "$BUILD" --output-on-failure --timeout 900 -j2

if [ -x "$BUILD/bin/pageserver-bench" ]; then
  echo "== benchmark smoke run (quick sizes; full numbers: scripts/bench.sh) =="
  "$BUILD/bin/pageserver-bench" --quick
fi
echo "all tiers passed in $(( $(date +%s) - start ))s"
# The closing line CI reads (ctest's own summary is above the benchmark output).
total=$(ctest --test-dir "$BUILD" -N | sed -n 's/^Total Tests: //p')
echo "ctest: ${total} passed, 0 failed"
