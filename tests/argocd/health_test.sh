#!/usr/bin/env bash
# The Argo CD health checks (deploy/argocd/health/pgbranch.io/{Branch,Endpoint}/health.lua):
#  - every case of their health_test.yaml passes in lua5.1 set up as Argo CD's Lua VM, and every
#    line of each script runs in some case (tests/argocd/run_health_tests.py);
#  - the runner can fail: a wrong expectation and a broken script are both reported;
#  - deploy/argocd/argocd-cm-health.yaml is what generate-argocd-cm.sh makes of the scripts now,
#    and its values are the scripts byte for byte.
# Exits 77 when lua5.1 is not installed (scripts/install-deps.sh installs it).
set -uo pipefail

ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HEALTH=$ROOT/deploy/argocd/health
RUNNER=$ROOT/tests/argocd/run_health_tests.py
# shellcheck source-path=SCRIPTDIR source=../k8s/lib/checks.sh
source "$ROOT/tests/k8s/lib/checks.sh"

if ! command -v lua5.1 >/dev/null || ! command -v luac5.1 >/dev/null; then
  echo "SKIP: lua5.1 is not installed (scripts/install-deps.sh installs it)"
  exit 77
fi
TMP=$(mktemp -d /tmp/argocd-health-test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

echo "== the health checks against their cases"
if out=$(python3 "$RUNNER" 2>&1); then
  pass "health_test.yaml cases, testdata use and line coverage"
  grep -c '^PASS' <<<"$out" | sed 's/^/      checks passed: /'
else
  fail "health_test.yaml cases, testdata use and line coverage" "$(grep -v '^PASS' <<<"$out")"
fi

echo "== the runner fails when it should"
cp -r "$HEALTH" "$TMP/wrong-expectation"
python3 - "$TMP/wrong-expectation/pgbranch.io/Branch/health_test.yaml" <<'PY'
import sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path))
doc["tests"][0]["healthStatus"]["status"] = "Healthy"  # no-status.yaml is Progressing
yaml.safe_dump(doc, open(path, "w"), sort_keys=False)
PY
out=$(python3 "$RUNNER" --health-dir "$TMP/wrong-expectation" 2>&1)
if [[ $? -eq 1 && $out == *"FAIL  pgbranch.io/Branch testdata/no-status.yaml (Healthy)"* ]]; then
  pass "a wrong expectation fails"
else
  fail "a wrong expectation fails" "$out"
fi
cp -r "$HEALTH" "$TMP/broken-script"
sed -i 's/hs.status = "Degraded"/hs.status = "Progressing"/' "$TMP/broken-script/pgbranch.io/Endpoint/health.lua"
out=$(python3 "$RUNNER" --health-dir "$TMP/broken-script" 2>&1)
if [[ $? -eq 1 && $out == *"FAIL  pgbranch.io/Endpoint testdata/conflict.yaml (Degraded)"* ]]; then
  pass "a script that no longer reports Degraded fails"
else
  fail "a script that no longer reports Degraded fails" "$out"
fi
cp -r "$HEALTH" "$TMP/string-library"
sed -i 's/^local hs = {}$/local hs = {}\nlocal up = string.upper("x")/' "$TMP/string-library/pgbranch.io/Branch/health.lua"
out=$(python3 "$RUNNER" --health-dir "$TMP/string-library" 2>&1)
if [[ $? -eq 1 && $out == *"attempt to index global 'string'"* ]]; then
  pass "the string library is missing, as in Argo CD"
else
  fail "the string library is missing, as in Argo CD" "$out"
fi
cp -r "$HEALTH" "$TMP/uncovered"
sed -i 's/^return hs$/if obj.never then\n  hs.message = "never"\nend\nreturn hs/' "$TMP/uncovered/pgbranch.io/Branch/health.lua"
out=$(python3 "$RUNNER" --health-dir "$TMP/uncovered" 2>&1)
if [[ $? -eq 1 && $out == *'never ran: hs.message = "never"'* ]]; then
  pass "a line no case runs fails"
else
  fail "a line no case runs fails" "$out"
fi

echo "== the argocd-cm snippet"
if out=$(diff -u "$ROOT/deploy/argocd/argocd-cm-health.yaml" <(bash "$HEALTH/generate-argocd-cm.sh" --stdout) 2>&1); then
  pass "argocd-cm-health.yaml is current (else run deploy/argocd/health/generate-argocd-cm.sh)"
else
  fail "argocd-cm-health.yaml is current (else run deploy/argocd/health/generate-argocd-cm.sh)" "$out"
fi
out=$(python3 - "$ROOT" <<'PY' 2>&1
import os, sys, yaml
root = sys.argv[1]
cm = yaml.safe_load(open(os.path.join(root, "deploy/argocd/argocd-cm-health.yaml")))
prefix = "resource.customizations.health."
keys = sorted(cm["data"])
want = sorted(prefix + g + "_" + k for g in os.listdir(os.path.join(root, "deploy/argocd/health"))
              if os.path.isdir(os.path.join(root, "deploy/argocd/health", g))
              for k in os.listdir(os.path.join(root, "deploy/argocd/health", g)))
assert keys == want, "keys %s, want %s" % (keys, want)
for key, value in cm["data"].items():
    group, kind = key[len(prefix):].split("_")
    script = open(os.path.join(root, "deploy/argocd/health", group, kind, "health.lua")).read()
    assert value == script, key + " differs from its health.lua"
print("ok")
PY
)
if [[ $out == ok ]]; then pass "argocd-cm values are the health.lua files byte for byte"; else fail "argocd-cm values are the health.lua files byte for byte" "$out"; fi

checks_summary "Argo CD health checks"
