#!/usr/bin/env bash
# README command 2: installs what is needed, builds, and runs every test tier.
#   tier 1 (label unit):    GoogleTest unit tests, fakes for clocks and filesystems
#   tier 2 (label storage): real processes - pageserver crash test, gRPC API faults, pagectl
#                           round trip of a real PostgreSQL 15 data directory, pagefs lockstep
#                           model test, PostgreSQL 15 on pagefs (pgbench, amcheck, isolation,
#                           point-in-time branches, kill -9 of each process, fencing)
#   tier 4 (label local):   the compute agent, the proxy and local mode end to end through the
#                           pgbranch CLI: the four Lakebase workflows, scale to zero and wake on
#                           connect (real pageserver, proxy, controller, computes, PostgreSQL 15)
#   (tier 3, the Kubernetes operator, and tier 5, manifests, come with the operator issue.)
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

echo "== benchmark smoke runs (quick sizes; full numbers: scripts/bench.sh, scripts/bench-pagefs.sh, scripts/bench-local.sh) =="
PGBRANCH_BIN_DIR="$BUILD/bin" "$BUILD/bin/pageserver-bench" --quick
PGBRANCH_BIN_DIR="$BUILD/bin" "$BUILD/bin/pagefs-bench" --quick
PGBRANCH_BIN_DIR="$BUILD/bin" "$BUILD/bin/local-bench" --quick
echo "all tiers passed in $(( $(date +%s) - start ))s"
# The closing line CI reads (ctest's own summary is above the benchmark output).
total=$(ctest --test-dir "$BUILD" -N | sed -n 's/^Total Tests: //p')
echo "ctest: ${total} passed, 0 failed"
