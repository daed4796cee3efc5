#!/usr/bin/env bash
# The Argo CD health checks in Argo CD's own Lua interpreter: tests/argocd/argocd-lua (gopher-lua
# v1.1.2 as argo-cd v3.5.7 pins it, the VM set up as Argo CD's util/lua does, with Argo CD's own
# oslib_safe.go from the module) runs every case of both health_test.yaml files. The lua5.1 run
# (health_test.sh) adds line coverage and the argocd-cm check; this one shows that gopher-lua
# agrees. Exits 77 when Go or the modules are not available.
set -uo pipefail

ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HERE=$ROOT/tests/argocd
HEALTH=$ROOT/deploy/argocd/health
# shellcheck source-path=SCRIPTDIR source=../k8s/lib/checks.sh
source "$ROOT/tests/k8s/lib/checks.sh"

command -v go >/dev/null || { echo "SKIP: go is not installed"; exit 77; }
fetched=$(bash "$HERE/fetch-argocd.sh")
rc=$?
if (( rc == 77 )); then echo "SKIP: Argo CD's module cannot be fetched"; exit 77; fi
(( rc == 0 )) || { echo "FAIL  fetch Argo CD's module"; exit 1; }
ARGOCD=$(tail -n1 <<<"$fetched")

CACHE=${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}
export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod} GOCACHE=${GOCACHE:-$CACHE/go/build}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
WORK=$(mktemp -d /tmp/argocd-gopher-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "== build argocd-lua (gopher-lua, Argo CD's VM setup and safe os library)"
mkdir -p "$WORK/src/argocdlua"
cp "$HERE/argocd-lua/main.go" "$HERE/argocd-lua/go.mod" "$HERE/argocd-lua/go.sum" "$WORK/src/"
sed 's/^package lua$/package argocdlua/' "$ARGOCD/lua/oslib_safe.go" >"$WORK/src/argocdlua/oslib_safe.go"
if ! out=$(cd "$WORK/src" && go mod download 2>&1); then
  echo "SKIP: the Go modules cannot be fetched: $out"
  exit 77
fi
if out=$(cd "$WORK/src" && go build -o "$WORK/argocd-lua" . 2>&1); then
  pass "argocd-lua builds"
else
  fail "argocd-lua builds" "$out"
  checks_summary "Argo CD health checks in gopher-lua"
  exit 1
fi

echo "== the cases in gopher-lua"
if out=$(python3 "$HERE/run_health_tests.py" --gopher "$WORK/argocd-lua" 2>&1); then
  pass "every health_test.yaml case gives the expected status and message in gopher-lua"
  grep -c '^PASS' <<<"$out" | sed 's/^/      checks passed: /'
else
  fail "every health_test.yaml case gives the expected status and message in gopher-lua" "$(grep -v '^PASS' <<<"$out")"
fi
cp -r "$HEALTH" "$WORK/wrong-expectation"
sed -i '0,/status: Degraded/s//status: Healthy/' "$WORK/wrong-expectation/pgbranch.io/Endpoint/health_test.yaml"
out=$(python3 "$HERE/run_health_tests.py" --gopher "$WORK/argocd-lua" --health-dir "$WORK/wrong-expectation" 2>&1)
if [[ $? -eq 1 && $out == *"FAIL  pgbranch.io/Endpoint"*"(Healthy)"* ]]; then
  pass "a wrong expectation fails in gopher-lua too"
else
  fail "a wrong expectation fails in gopher-lua too" "$out"
fi
cp -r "$HEALTH" "$WORK/string-method"
sed -i 's/^local hs = {}$/local hs = {}\nlocal up = ("x"):upper()/' "$WORK/string-method/pgbranch.io/Branch/health.lua"
out=$(python3 "$HERE/run_health_tests.py" --gopher "$WORK/argocd-lua" --health-dir "$WORK/string-method" 2>&1)
if [[ $? -eq 1 && $out == *"attempt to index a non-table object(string) with key 'upper'"* ]]; then
  pass "strings have no methods in Argo CD's VM (as in the lua5.1 sandbox)"
else
  fail "strings have no methods in Argo CD's VM (as in the lua5.1 sandbox)" "$out"
fi

checks_summary "Argo CD health checks in gopher-lua"
