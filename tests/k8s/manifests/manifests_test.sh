#!/usr/bin/env bash
# Tier 3/5: the CRDs, the protected-branch admission policy and the samples against a real
# kube-apiserver (its own cluster from scripts/k8s/cluster.sh, private state dir, free port).
# One line per check (PASS/FAIL); exits non-zero if any check fails.
set -uo pipefail

ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
CLUSTER=$ROOT/scripts/k8s/cluster.sh
export PGBRANCH_K8S_DIR=${PGBRANCH_K8S_TEST_DIR:-/tmp/pgbranch-k8s-manifests.$$}
export PGBRANCH_K8S_PORT=$(python3 "$ROOT/scripts/free-port.py")
unset KUBECONFIG

# shellcheck source=../lib/checks.sh
source "$ROOT/tests/k8s/lib/checks.sh"

cleanup() {
  local rc=$?
  bash "$CLUSTER" down >/dev/null 2>&1 || true
  rm -f "$PGBRANCH_K8S_DIR.lock"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== cluster (state $PGBRANCH_K8S_DIR, port $PGBRANCH_K8S_PORT)"
t0=$(date +%s%3N)
if ! bash "$CLUSTER" up; then
  echo "FAIL  cluster up"
  exit 1
fi
echo "      control plane up in $(( $(date +%s%3N) - t0 )) ms"
# shellcheck disable=SC1091
source "$PGBRANCH_K8S_DIR/env.sh"
k() { kubectl --request-timeout=30s "$@"; }

# ---- install ---------------------------------------------------------------------------------
echo "== install CRDs, policy and samples"
if out=$(k apply --server-side -f "$ROOT/crds/branches.pgbranch.io.yaml" \
  -f "$ROOT/crds/endpoints.pgbranch.io.yaml" -f "$ROOT/crds/promotions.pgbranch.io.yaml" 2>&1); then pass "CRDs apply"; else fail "CRDs apply" "$out"; fi
if out=$(bash "$CLUSTER" established crd/branches.pgbranch.io crd/endpoints.pgbranch.io crd/promotions.pgbranch.io 2>&1); then
  pass "CRDs Established"
else
  fail "CRDs Established" "$out"
  exit 1
fi
if out=$(k apply --server-side -f "$ROOT/crds/protected-branch-policy.yaml" 2>&1); then
  pass "protected-branch policy apply"
else
  fail "protected-branch policy apply" "$out"
fi
out=$(k get validatingadmissionpolicy pgbranch-protected-branches -o jsonpath='{.status.typeChecking}' 2>&1)
if [[ $out != *expressionWarnings* ]]; then pass "policy type-checks without warnings"; else fail "policy type-checks without warnings" "$out"; fi

# Every schema property has a description.
out=$(k get crd branches.pgbranch.io endpoints.pgbranch.io -o json | python3 -c '
import json, sys
missing = []
def walk(path, s):
    for name, p in (s.get("properties") or {}).items():
        if name in ("apiVersion", "kind", "metadata") and path.count(".") == 0:
            continue
        if not p.get("description"):
            missing.append(path + "." + name)
        walk(path + "." + name, p)
    if "items" in s:
        walk(path + "[]", s["items"])
    if isinstance(s.get("additionalProperties"), dict):
        walk(path + "{}", s["additionalProperties"])
for crd in json.load(sys.stdin)["items"]:
    for v in crd["spec"]["versions"]:
        walk(crd["spec"]["names"]["kind"], v["schema"]["openAPIV3Schema"])
print("\n".join(missing))' 2>&1)
if [[ -z $out ]]; then pass "every field has a description"; else fail "every field has a description" "$out"; fi

for f in "$ROOT"/deploy/samples/*.yaml; do
  if out=$(k apply --server-side -f "$f" 2>&1); then pass "sample $(basename "$f")"; else fail "sample $(basename "$f")" "$out"; fi
done

# ---- discovery and printer columns -----------------------------------------------------------
echo "== kubectl get"
out=$(k get pgbranch 2>&1)
if [[ $out == *branch.pgbranch.io/main* && $out == *endpoint.pgbranch.io/main* ]]; then
  pass "kubectl get pgbranch lists both kinds"
else
  fail "kubectl get pgbranch lists both kinds" "$out"
fi
for sn in br pgbr pgep pgendpoint; do
  if out=$(k get "$sn" -o name 2>&1) && [[ $out == *pgbranch.io/* ]]; then pass "short name $sn"; else fail "short name $sn" "$out"; fi
done
out=$(k get endpoints 2>&1)
if [[ $out != *dev-alex* ]]; then pass "kubectl get endpoints stays the core kind"; else fail "kubectl get endpoints stays the core kind" "$out"; fi

# A status as the operator writes it (operator/model/json.cc ToJson(Branch)).
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
status='{"status":{"phase":"Ready","tenantID":"t1","timelineID":"a1b2","parentTimelineID":"","parentLSN":0,
 "headLSN":23456789,"logicalSize":8388608,"divergedBytes":4096,"observedResetGeneration":0,
 "conditions":[{"type":"Ready","status":"True","reason":"TimelineReady","message":"ok",
 "lastTransitionTime":"'$now'","observedGeneration":1}],"observedGeneration":1}}'
if out=$(k patch branch main --subresource=status --type merge -p "$status" 2>&1); then
  pass "Branch status in the operator's shape is accepted"
else
  fail "Branch status in the operator's shape is accepted" "$out"
fi
estatus='{"status":{"phase":"Running","host":"pgbranch-proxy.default.svc","port":55432,"timelineID":"a1b2",
 "secretName":"main-credentials","lastActive":"'$now'","restarts":0,
 "conditions":[{"type":"Ready","status":"True","reason":"ComputeRunning","message":"",
 "lastTransitionTime":"'$now'","observedGeneration":1}],"observedGeneration":1}}'
if out=$(k patch endpoint.pgbranch.io main --subresource=status --type merge -p "$estatus" 2>&1); then
  pass "Endpoint status in the operator's shape is accepted"
else
  fail "Endpoint status in the operator's shape is accepted" "$out"
fi
out=$(k get branches 2>&1)
header=$(head -n1 <<<"$out" | tr -s ' ')
if [[ $header == "NAME PARENT READY LOGICAL SIZE DIVERGED EXPIRES AGE" ]]; then
  pass "branches printer columns"
else
  fail "branches printer columns" "$out"
fi
if grep -Eq '^main[[:space:]]+True[[:space:]]+8388608[[:space:]]+4096[[:space:]]' <<<"$out"; then
  pass "branches row shows Ready, size and diverged bytes"
else
  fail "branches row shows Ready, size and diverged bytes" "$out"
fi
out=$(k get pgep 2>&1)
header=$(head -n1 <<<"$out" | tr -s ' ')
if [[ $header == "NAME BRANCH TYPE PHASE HOST LAST ACTIVE AGE" ]] &&
  grep -Eq '^main[[:space:]]+main[[:space:]]+ReadWrite[[:space:]]+Running[[:space:]]+pgbranch-proxy' <<<"$out"; then
  pass "endpoints printer columns"
else
  fail "endpoints printer columns" "$out"
fi

# ---- CEL rules on create ---------------------------------------------------------------------
echo "== rejected at create (server dry-run)"
# reject NAME EXPECTED-TEXT: the YAML on stdin must be refused with EXPECTED-TEXT in the message.
reject() {
  local name=$1 want=$2 doc out
  doc=$(cat)
  if out=$(k apply --server-side --dry-run=server -f - <<<"$doc" 2>&1); then
    fail "$name: accepted" "$out"
  elif [[ $out == *"$want"* ]]; then
    pass "$name"
  else
    fail "$name: wrong message (want: $want)" "$out"
  fi
}
branch() { printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata:\n  name: %s\nspec:\n' "$1"; sed 's/^/  /'; }
endpoint() { printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata:\n  name: %s\nspec:\n' "$1"; sed 's/^/  /'; }

long64=b$(printf 'x%.0s' {1..63})
long53=e$(printf 'x%.0s' {1..52})
reject "branch name > 63 chars" "a branch name must be at most 63 characters" < <(branch "$long64" <<<'noExpiry: true')
reject "branch name with a dot" "a branch name may contain only lower-case letters" < <(branch "my.branch" <<<'noExpiry: true')
reject "branch is its own parent" "a branch cannot be its own parent" < <(branch "loop" <<<$'parent: loop\nttl: 1h')
reject "lsn and timestamp together" "give spec.lsn or spec.timestamp, not both" < <(branch "x" <<<$'parent: main\nlsn: 100\ntimestamp: "2026-01-01T00:00:00Z"\nttl: 1h')
reject "lsn without parent" "needs spec.parent: a root branch starts empty" < <(branch "x" <<<$'lsn: 100\nttl: 1h')
reject "timestamp without parent" "needs spec.parent: a root branch starts empty" < <(branch "x" <<<$'timestamp: "2026-01-01T00:00:00Z"\nttl: 1h')
reject "no expiration" "give exactly one of spec.ttl, spec.expireTime and spec.noExpiry: true" < <(branch "x" <<<'parent: main')
reject "ttl and noExpiry" "give exactly one of spec.ttl, spec.expireTime and spec.noExpiry: true" < <(branch "x" <<<$'parent: main\nttl: 1h\nnoExpiry: true')
reject "ttl and expireTime" "give exactly one of spec.ttl, spec.expireTime and spec.noExpiry: true" < <(branch "x" <<<$'parent: main\nttl: 1h\nexpireTime: "2030-01-01T00:00:00Z"')
reject "noExpiry: false alone" "give exactly one of spec.ttl, spec.expireTime and spec.noExpiry: true" < <(branch "x" <<<$'parent: main\nnoExpiry: false')
reject "protected branch with a ttl" "a protected branch cannot expire" < <(branch "x" <<<$'parent: main\nttl: 1h\nprotected: true')
reject "ttl not a duration" "spec.ttl must be a duration" < <(branch "x" <<<$'parent: main\nttl: 1 hour')
reject "ttl without unit" "spec.ttl must be a duration" < <(branch "x" <<<$'parent: main\nttl: "90"')
reject "ttl with unknown unit" "spec.ttl must be a duration" < <(branch "x" <<<$'parent: main\nttl: 2w')
reject "ttl zero" "spec.ttl must be positive" < <(branch "x" <<<$'parent: main\nttl: 0h0m')
reject "historyWindow not a duration" "spec.retention.historyWindow must be a duration" < <(branch "x" <<<$'parent: main\nnoExpiry: true\nretention:\n  historyWindow: forever')
reject "timestamp not RFC 3339" "spec.timestamp" < <(branch "x" <<<$'parent: main\ntimestamp: yesterday\nttl: 1h')
reject "parent not a valid name" "spec.parent" < <(branch "x" <<<$'parent: Main\nttl: 1h')
reject "negative lsn" "spec.lsn" < <(branch "x" <<<$'parent: main\nlsn: -1\nttl: 1h')
reject "unknown spec field" '.spec.colour: field not declared in schema' < <(branch "x" <<<$'parent: main\nttl: 1h\ncolour: blue')
reject "endpoint name > 52 chars" "an endpoint name must be at most 52 characters" < <(endpoint "$long53" <<<'branch: main')
reject "endpoint name starting with a digit" "must start with a letter" < <(endpoint "1st" <<<'branch: main')
reject "lsn on a ReadWrite endpoint" "only a ReadOnly endpoint serves a past point" < <(endpoint "x" <<<$'branch: main\nlsn: 100')
reject "timestamp on a ReadWrite endpoint" "only a ReadOnly endpoint serves a past point" < <(endpoint "x" <<<$'branch: main\ntimestamp: "2026-01-01T00:00:00Z"')
reject "lsn and timestamp on an endpoint" "give spec.lsn or spec.timestamp, not both" < <(endpoint "x" <<<$'branch: main\ntype: ReadOnly\nlsn: 100\ntimestamp: "2026-01-01T00:00:00Z"')
reject "unknown endpoint type" 'supported values: "ReadWrite", "ReadOnly"' < <(endpoint "x" <<<$'branch: main\ntype: Primary')
reject "suspendTimeout without unit" "spec.suspendTimeout must be a duration" < <(endpoint "x" <<<$'branch: main\nsuspendTimeout: "0"')
reject "endpoint without branch" "spec.branch: Required value" < <(endpoint "x" <<<'type: ReadOnly')
reject "cpu not a quantity" "spec.resources.cpu" < <(endpoint "x" <<<$'branch: main\nresources:\n  cpu: lots')
reject "unquoted postgres parameter" "spec.postgresParameters.max_connections" < <(endpoint "x" <<<$'branch: main\npostgresParameters:\n  max_connections: 100')

echo "== accepted edge cases (server dry-run)"
accept() {
  local name=$1 out
  if out=$(k apply --server-side --dry-run=server -f - 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
accept "ttl 1h30m" < <(branch "x" <<<$'parent: main\nttl: 1h30m')
accept "ttl 1.5h" < <(branch "x" <<<$'parent: main\nttl: 1.5h')
accept "ttl with noExpiry: false" < <(branch "x" <<<$'parent: main\nttl: 500ms\nnoExpiry: false')
accept "branch at an LSN with expireTime" < <(branch "x" <<<$'parent: main\nlsn: 23456789\nexpireTime: "2030-01-01T00:00:00Z"')
accept "endpoint suspendTimeout 0s, integer cpu" < <(endpoint "x" <<<$'branch: main\nsuspendTimeout: 0s\nresources:\n  cpu: 2\n  memory: 512Mi')
out=$(endpoint "x" <<<'branch: main' | k apply --server-side --dry-run=server -o jsonpath='{.spec.type} {.spec.suspendTimeout}' -f - 2>&1)
if [[ $out == "ReadWrite 5m" ]]; then pass "endpoint defaults: type ReadWrite, suspendTimeout 5m"; else fail "endpoint defaults" "$out"; fi

# ---- immutability (updates of stored objects) ------------------------------------------------
echo "== rejected at update"
# reject_patch NAME EXPECTED-TEXT KIND/NAME PATCH
reject_patch() {
  local name=$1 want=$2 obj=$3 patch=$4 out
  if out=$(k patch "$obj" --type merge -p "$patch" 2>&1); then
    fail "$name: accepted" "$out"
  elif [[ $out == *"$want"* ]]; then
    pass "$name"
  else
    fail "$name: wrong message (want: $want)" "$out"
  fi
}
ok_patch() {
  local name=$1 obj=$2 patch=$3 out
  if out=$(k patch "$obj" --type merge -p "$patch" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
branch "at-lsn" <<<$'parent: main\nlsn: 100\nttl: 1h' | k apply --server-side -f - >/dev/null
branch "scratch" <<<'ttl: 1h' | k apply --server-side -f - >/dev/null
reject_patch "parent changed" "spec.parent is immutable" branch/dev-alex '{"spec":{"parent":"ci-run-1234"}}'
reject_patch "parent removed" "spec.parent cannot be added or removed" branch/dev-alex '{"spec":{"parent":null}}'
reject_patch "parent added" "spec.parent cannot be added or removed" branch/scratch '{"spec":{"parent":"main"}}'
reject_patch "lsn changed" "spec.lsn is immutable" branch/at-lsn '{"spec":{"lsn":200}}'
reject_patch "lsn added" "cannot be added or removed after creation" branch/dev-alex '{"spec":{"lsn":200}}'
reject_patch "lsn removed" "cannot be added or removed after creation" branch/at-lsn '{"spec":{"lsn":null}}'
reject_patch "timestamp changed" "spec.timestamp is immutable" branch/before-migration '{"spec":{"timestamp":"2026-11-20T10:00:00Z"}}'
reject_patch "timestamp added" "cannot be added or removed after creation" branch/dev-alex '{"spec":{"timestamp":"2026-11-20T10:00:00Z"}}'
ok_patch "resetGeneration raised to 2" branch/dev-alex '{"spec":{"resetGeneration":2}}'
reject_patch "resetGeneration lowered" "spec.resetGeneration can only grow" branch/dev-alex '{"spec":{"resetGeneration":1}}'
reject_patch "resetGeneration removed" "spec.resetGeneration can only grow" branch/dev-alex '{"spec":{"resetGeneration":null}}'
ok_patch "ttl changed" branch/dev-alex '{"spec":{"ttl":"14d"}}'
ok_patch "ttl swapped for noExpiry" branch/dev-alex '{"spec":{"ttl":null,"noExpiry":true}}'
promotion() { printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Promotion\nmetadata:\n  name: %s\nspec:\n' "$1"; sed 's/^/  /'; }
reject "promotion without a branch" "spec.branch: Required value" < <(promotion "p" <<<'allowProtected: true')
reject "promotion with sql and configMapRef" "spec.migration needs exactly one of sql" < <(promotion "p" <<<$'branch: dev\nmigration:\n  sql: select 1\n  configMapRef: {name: m, key: k}')
reject "promotion restore point ttl and keep" "ttl and keep: true exclude each other" < <(promotion "p" <<<$'branch: dev\nrestorePoint: {ttl: 1h, keep: true}')
reject "promotion restore point ttl not a duration" "spec.restorePoint.ttl must be a duration" < <(promotion "p" <<<$'branch: dev\nrestorePoint: {ttl: a week}')
reject "promotion branch not a name" "spec.branch must be a branch name" < <(promotion "p" <<<'branch: Dev_Alex')
reject_patch "endpoint branch changed" "spec.branch is immutable" endpoint.pgbranch.io/dev-alex '{"spec":{"branch":"main"}}'
reject_patch "endpoint type changed" "spec.type is immutable" endpoint.pgbranch.io/dev-alex '{"spec":{"type":"ReadOnly"}}'
ok_patch "endpoint suspendTimeout changed" endpoint.pgbranch.io/dev-alex '{"spec":{"suspendTimeout":"15m"}}'
ok_patch "read-only endpoint moved to another time" endpoint.pgbranch.io/main-yesterday '{"spec":{"timestamp":"2026-11-28T13:00:00Z"}}'

# ---- protected branches (ValidatingAdmissionPolicy) ------------------------------------------
echo "== protected branches"
branch "staging" <<<$'parent: main\nnoExpiry: true\nprotected: true' | k apply --server-side -f - >/dev/null
# The policy takes 0.5-1 s to become active: wait with dry-run deletes (nothing is lost if early).
active=0
for _ in $(seq 1 50); do
  if ! k delete branch staging --dry-run=server >/dev/null 2>&1; then active=1; break; fi
  sleep 0.2
done
if ((active)); then pass "policy active"; else fail "policy active (dry-run delete of a protected branch still allowed after 10 s)"; fi
out=$(k delete branch main 2>&1)
if [[ $? -ne 0 && $out == *"branch main is protected and cannot be deleted: set spec.protected to false first"* ]]; then
  pass "delete of protected branch main refused"
else
  fail "delete of protected branch main refused" "$out"
fi
if k get branch main >/dev/null 2>&1; then pass "main still exists"; else fail "main still exists"; fi
reject_patch "reset of a protected branch refused" "branch staging is protected and cannot be reset" branch/staging '{"spec":{"resetGeneration":1}}'
reject_patch "unprotect and reset in one update refused" "branch staging is protected and cannot be reset" branch/staging '{"spec":{"protected":false,"resetGeneration":1}}'
reject_patch "protect and reset in one update refused" "branch dev-alex is protected and cannot be reset" branch/dev-alex '{"spec":{"protected":true,"resetGeneration":3}}'
ok_patch "metadata update of a protected branch allowed" branch/main '{"metadata":{"labels":{"tier":"prod"}}}'
# A root has no parent to reset from (the policy, since the CRD cannot see annotations); a
# restore (`pgbranch branch restore`) names the resetGeneration it raises in an annotation,
# which is also the explicit exception for a protected branch.
reject "resetGeneration on a new root branch" "only a branch with a parent can be reset" < <(branch "x" <<<$'noExpiry: true\nresetGeneration: 1')
reject_patch "reset of a root branch refused" "only a branch with a parent can be reset" branch/scratch '{"spec":{"resetGeneration":1}}'
reject_patch "restore annotation for another generation refused" "only a branch with a parent can be reset" branch/scratch '{"metadata":{"annotations":{"pgbranch.io/restore-generation":"7"}},"spec":{"resetGeneration":1}}'
if out=$(k patch branch/scratch --dry-run=server --type merge -p '{"metadata":{"annotations":{"pgbranch.io/restore-generation":"1"}},"spec":{"resetGeneration":1}}' 2>&1); then
  pass "restore of a root branch allowed"
else
  fail "restore of a root branch allowed" "$out"
fi
if out=$(k patch branch/main --dry-run=server --type merge -p '{"metadata":{"annotations":{"pgbranch.io/restore-generation":"1"}},"spec":{"resetGeneration":1}}' 2>&1); then
  pass "restore of a protected root branch allowed (explicit)"
else
  fail "restore of a protected root branch allowed (explicit)" "$out"
fi
if out=$(k patch branch staging --subresource=status --type merge -p '{"status":{"phase":"Ready"}}' 2>&1); then
  pass "status subresource of a protected branch writable"
else
  fail "status subresource of a protected branch writable" "$out"
fi
ok_patch "unprotect staging" branch/staging '{"spec":{"protected":false}}'
ok_patch "reset of the unprotected branch" branch/staging '{"spec":{"resetGeneration":1}}'
if out=$(k delete branch staging --wait=false 2>&1); then pass "delete of the unprotected branch"; else fail "delete of the unprotected branch" "$out"; fi
ok_patch "unprotect main" branch/main '{"spec":{"protected":false}}'
if out=$(k delete branch main --wait=false 2>&1); then pass "delete of main once unprotected"; else fail "delete of main once unprotected" "$out"; fi

# ---- restart -------------------------------------------------------------------------------
echo "== API server restart keeps the objects"
if bash "$CLUSTER" restart-apiserver >/dev/null 2>&1 && out=$(k get br dev-alex -o jsonpath='{.spec.resetGeneration}' 2>&1) && [[ $out == 2 ]]; then
  pass "objects survive an API server restart"
else
  fail "objects survive an API server restart" "${out:-restart failed}"
fi

echo
echo "== $passed passed, $failed failed"
if ((failed)); then
  printf '   FAILED: %s\n' "${failures[@]}"
  exit 1
fi
exit 0
