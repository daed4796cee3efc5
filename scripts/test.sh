#!/usr/bin/env bash
# README command 2: installs what is needed, builds, and runs every test tier.
#   tier 1 (label unit):    GoogleTest unit tests, fakes for clocks, filesystems and the
#                           Kubernetes API (in-memory API server with fault injection)
#   tier 2 (label storage): real processes - pageserver crash test, gRPC API faults, pagectl
#                           round trip of a real PostgreSQL 15 data directory, pagefs lockstep
#                           model test, PostgreSQL 15 on pagefs (pgbench, amcheck, isolation,
#                           point-in-time branches, kill -9 of each process, fencing)
#   tier 3 (label k8s):     a real kube-apiserver, etcd, controller-manager, scheduler (built
#                           from the Go module proxy, cached in ~/.cache/pgbranch) and a real
#                           kubelet with containerd and runc: the CRDs, CEL rules and admission
#                           policy (tier 5), the operator (two replicas, leader election, kill -9,
#                           API server restart), real compute pods end to end through the proxy
#   tier 5 (label k8s/unit): the Helm chart (lint, renderings validated by the API server, RBAC
#                           derived from the code, install.yaml freshness), `helm install` on the
#                           real kubelet with Services and DNS, the CLI against a cluster, the
#                           Argo CD health checks in lua5.1 and gopher-lua
#   tier 4 (label local):   the compute agent, the proxy and local mode end to end through the
#                           pgbranch CLI: the four Lakebase workflows, scale to zero and wake on
#                           connect (real pageserver, proxy, controller, computes, PostgreSQL 15)
# Then quick benchmark smoke runs, so the benchmark programs cannot rot (numbers: scripts/bench*.sh).
# Environment: PGBRANCH_BUILD_DIR (default build), CCACHE_DIR (default ~/.cache/pgbranch/ccache),
# PGBRANCH_CACHE (default ~/.cache/pgbranch: Kubernetes binaries, Go caches, image layers).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${PGBRANCH_BUILD_DIR:-$ROOT/build}

start=$(date +%s)
"$ROOT/scripts/install-deps.sh"
# The Kubernetes binaries (cold: ~25 min of Go; warm: instant) build beside the C++ build.
k8s_log=$(mktemp /tmp/pgbranch-k8s-build.XXXXXX.log)
"$ROOT/scripts/k8s/build-k8s.sh" >"$k8s_log" 2>&1 &
k8s_pid=$!
PGBRANCH_BUILD_DIR=$BUILD "$ROOT/scripts/build.sh"
echo "build: $(( $(date +%s) - start ))s"
if ! wait "$k8s_pid"; then
  tail -n 40 "$k8s_log"
  echo "building the Kubernetes test binaries failed (log above)"
  exit 1
fi
echo "kubernetes binaries ready: $(tail -n 1 "$k8s_log") ($(( $(date +%s) - start ))s)"
rm -f "$k8s_log"

ctest --test-dir "$BUILD" --output-on-failure --timeout 1800 -j2

echo "== benchmark smoke runs (quick sizes; full numbers: scripts/bench.sh, scripts/bench-pagefs.sh, scripts/bench-local.sh, scripts/bench-k8s.sh, scripts/bench-k8s-e2e.sh) =="
PGBRANCH_BIN_DIR="$BUILD/bin" "$BUILD/bin/pageserver-bench" --quick
"$BUILD/bin/crc32-bench" --quick
PGBRANCH_BIN_DIR="$BUILD/bin" "$BUILD/bin/pagefs-bench" --quick
PGBRANCH_BIN_DIR="$BUILD/bin" "$BUILD/bin/local-bench" --quick
BUILD_DIR="$BUILD" "$ROOT/scripts/bench-k8s.sh" --quick
echo "all tiers passed in $(( $(date +%s) - start ))s"
# The closing line CI reads (ctest's own summary is above the benchmark output).
total=$(ctest --test-dir "$BUILD" -N | sed -n 's/^Total Tests: //p')
echo "ctest: ${total} passed, 0 failed"
