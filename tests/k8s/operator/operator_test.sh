#!/usr/bin/env bash
# Tier 3: pgbranch-operator against a real kube-apiserver + etcd + controller-manager + scheduler
# (its own cluster from scripts/k8s/cluster.sh) and a real pageserver. No kubelet here: compute
# pods stay Pending (tests/k8s/e2e runs them on a real node). Two operator replicas with leader
# election. Covers: Branch create (root, child, timelines keyed by UID at the pageserver), reset
# through spec.resetGeneration, TTL expiry, deletion refused while children exist (condition +
# Event), deletion with finalizers (timeline gone), the ValidatingAdmissionPolicy, a second
# ReadWrite Endpoint (Conflict, no pod), point-in-time failures with a readable condition, the
# leader SIGKILLed mid-reconcile (the standby takes the Lease and converges), an API server
# restart, and a branch deleted and created again under its name (a new timeline).
# One line per check (PASS/FAIL); exits non-zero if any check fails.
set -uo pipefail

ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
BIN=${PGBRANCH_BIN_DIR:-$ROOT/build/bin}
CLUSTER=$ROOT/scripts/k8s/cluster.sh
# shellcheck source=../lib/checks.sh
source "$ROOT/tests/k8s/lib/checks.sh"
export PGBRANCH_K8S_DIR=${PGBRANCH_K8S_TEST_DIR:-/tmp/pgbranch-k8s-operator.$$}
export PGBRANCH_K8S_PORT=$(free_port)
WORK=$(mktemp -d /tmp/pgbranch-operator-test.XXXXXX)
PS_PORT=$(free_port)
unset KUBECONFIG

declare -A OP_PID
start_operator() {  # start_operator NAME
  local name=$1
  setsid "$BIN/pgbranch-operator" --kubeconfig "$KUBECONFIG" --pageserver "127.0.0.1:$PS_PORT" \
    --listen "127.0.0.1:0" --identity "$name" --lease-namespace default \
    >>"$WORK/$name.log" 2>&1 &
  OP_PID[$name]=$!
}
stop_all() {
  for p in "${OP_PID[@]}"; do kill -TERM "$p" 2>/dev/null; done
  [[ -n ${PS_PID:-} ]] && kill -TERM "$PS_PID" 2>/dev/null
  for i in $(seq 50); do
    local alive=0
    for p in "${OP_PID[@]}" ${PS_PID:-}; do kill -0 "$p" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.1
  done
  for p in "${OP_PID[@]}" ${PS_PID:-}; do kill -KILL "$p" 2>/dev/null; done
}
cleanup() {
  local rc=$?
  if (( failed > 0 )); then
    for f in "$WORK"/*.log; do echo "---- $(basename "$f") (last 30 lines)"; tail -n 30 "$f"; done
  fi
  stop_all
  bash "$CLUSTER" down >/dev/null 2>&1 || true
  rm -rf "$WORK" "$PGBRANCH_K8S_DIR.lock"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== cluster (state $PGBRANCH_K8S_DIR, port $PGBRANCH_K8S_PORT)"
bash "$CLUSTER" up || { echo "FAIL  cluster up"; exit 1; }
# shellcheck disable=SC1091
source "$PGBRANCH_K8S_DIR/env.sh"
k() { kubectl --request-timeout=30s "$@"; }
k apply --server-side -f "$ROOT/crds/" >/dev/null
bash "$CLUSTER" established crd/branches.pgbranch.io crd/endpoints.pgbranch.io

"$BIN/pgbranch-pageserver" --data-dir "$WORK/pageserver" --listen "127.0.0.1:$PS_PORT" \
  >"$WORK/pageserver.log" 2>&1 &
PS_PID=$!
start_operator op-a
sleep 1
start_operator op-b

phase() { k get "$1" "$2" -o jsonpath='{.status.phase}'; }
is_phase() { [[ $(phase "$1" "$2") == "$3" ]] || { echo "$1/$2 phase: $(phase "$1" "$2")"; k get "$1" "$2" -o jsonpath='{.status.conditions}'; return 1; }; }
timelines() { PGBRANCH_PAGESERVER=127.0.0.1:$PS_PORT "$BIN/pagectl" timeline list --tenant default -o json; }
has_timeline() { timelines | grep -q "\"$1\""; }
no_timeline() { ! timelines | grep -q "\"$1\""; }
gone() { ! k get "$1" "$2" >/dev/null 2>&1; }
leader() { k get lease pgbranch-operator -o jsonpath='{.spec.holderIdentity}'; }

echo "== leader election"
check "one replica holds the Lease" 30 bash -c "[[ \$(kubectl get lease pgbranch-operator -o jsonpath='{.spec.holderIdentity}') == op-a ]]"

echo "== branches"
cat >"$WORK/main.yaml" <<'YAML'
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: main}
spec: {noExpiry: true, protected: true}
---
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: dev}
spec: {parent: main, noExpiry: true}
YAML
k apply -f "$WORK/main.yaml" >/dev/null
check "root branch main Ready" 30 is_phase branch main Ready
check "child branch dev Ready" 30 is_phase branch dev Ready
MAIN_UID=$(k get branch main -o jsonpath='{.metadata.uid}')
DEV_UID=$(k get branch dev -o jsonpath='{.metadata.uid}')
check "timelines are keyed by the Branch UID" 5 bash -c "[[ \$(kubectl get branch dev -o jsonpath='{.status.timelineID}') == $DEV_UID && \$(kubectl get branch dev -o jsonpath='{.status.parentTimelineID}') == $MAIN_UID ]]"
check "the pageserver holds both timelines" 5 bash -c "$(declare -f timelines has_timeline); BIN=$BIN PS_PORT=$PS_PORT; has_timeline $MAIN_UID && has_timeline $DEV_UID"
check "the operator's finalizer is on each branch" 5 bash -c "[[ \$(kubectl get branch dev -o jsonpath='{.metadata.finalizers}') == *pgbranch.io/finalizer* ]]"
check "Ready condition with observedGeneration" 5 bash -c "[[ \$(kubectl get branch dev -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}/{.status.observedGeneration}') == True/1 ]]"

echo "== reset from the parent"
# The one-liner of docs/kubernetes.md, as written.
kubectl patch branch dev --type merge -p "{\"spec\":{\"resetGeneration\":$(( $(kubectl get branch dev -o jsonpath='{.spec.resetGeneration}') + 1 ))}}" >/dev/null
check "dev reset (observedResetGeneration 1, lastResetTime set)" 30 bash -c "[[ \$(kubectl get branch dev -o jsonpath='{.status.observedResetGeneration}') == 1 && -n \$(kubectl get branch dev -o jsonpath='{.status.lastResetTime}') ]]"
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: staging}
spec: {parent: main, noExpiry: true, protected: true}
YAML
check "protected child branch staging Ready" 30 is_phase branch staging Ready
out=$(k patch branch staging --type merge -p '{"spec":{"resetGeneration":1}}' 2>&1)
if [[ $? -ne 0 && $out == *protected* ]]; then pass "resetting a protected branch is refused by the API server"; else fail "resetting a protected branch is refused by the API server" "$out"; fi
out=$(k patch branch main --type merge -p '{"spec":{"resetGeneration":1}}' 2>&1)
if [[ $? -ne 0 && $out == *"needs spec.parent"* ]]; then pass "resetting a root branch is refused (admission policy)"; else fail "resetting a root branch is refused (admission policy)" "$out"; fi

echo "== protection (ValidatingAdmissionPolicy)"
out=$(k delete branch main --wait=false 2>&1)
if [[ $? -ne 0 && $out == *protected* ]]; then pass "deleting a protected branch is refused by the API server"; else fail "deleting a protected branch is refused by the API server" "$out"; fi

echo "== deletion refused while children exist"
cat >"$WORK/tree.yaml" <<'YAML'
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: feature}
spec: {parent: dev, noExpiry: true}
YAML
k apply -f "$WORK/tree.yaml" >/dev/null
check "feature (child of dev) Ready" 30 is_phase branch feature Ready
FEATURE_UID=$(k get branch feature -o jsonpath='{.metadata.uid}')
k delete branch dev --wait=false >/dev/null
check "dev kept with Ready=False reason HasChildren naming feature" 30 bash -c "[[ \$(kubectl get branch dev -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}: {.status.conditions[?(@.type==\"Ready\")].message}') == 'HasChildren: '*feature* ]]"
check "a Warning Event names the child" 30 bash -c "kubectl get events --field-selector involvedObject.name=dev,reason=HasChildren -o jsonpath='{.items[*].message}' | grep -q feature"
k delete branch feature --wait=false >/dev/null
check "feature deleted, then dev (finalizers released)" 30 bash -c "! kubectl get branch feature >/dev/null 2>&1 && ! kubectl get branch dev >/dev/null 2>&1"
check "their timelines are gone from the pageserver" 10 bash -c "$(declare -f timelines no_timeline); BIN=$BIN PS_PORT=$PS_PORT; no_timeline $FEATURE_UID && no_timeline $DEV_UID"

echo "== TTL expiry"
cat >"$WORK/ttl.yaml" <<'YAML'
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: ci-short}
spec: {parent: main, ttl: 4s}
---
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: ci-short}
spec: {branch: ci-short}
YAML
k apply -f "$WORK/ttl.yaml" >/dev/null
check "ci-short Ready with an expireTime" 30 bash -c "[[ -n \$(kubectl get branch ci-short -o jsonpath='{.status.expireTime}') ]]"
check "ci-short expired: deleted with its endpoint" 40 bash -c "! kubectl get branch ci-short >/dev/null 2>&1 && ! kubectl get endpoint ci-short >/dev/null 2>&1"

echo "== endpoints: credentials, one writer per branch"
cat >"$WORK/ep.yaml" <<'YAML'
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: main}
spec: {branch: main}
YAML
k apply -f "$WORK/ep.yaml" >/dev/null
check "a compute pod main-compute exists (owned by the Endpoint)" 30 bash -c "[[ \$(kubectl get pod main-compute -o jsonpath='{.metadata.ownerReferences[0].kind}') == Endpoint ]]"
check "credentials Secret with uri/host/port/user/password" 10 bash -c "for key in uri host port user password; do [[ -n \$(kubectl get secret main-credentials -o jsonpath=\"{.data.\$key}\") ]] || exit 1; done"
check "an ExternalName Service main points clients at the proxy" 10 bash -c "[[ \$(kubectl get service main -o jsonpath='{.spec.type}/{.spec.externalName}') == ExternalName/pgbranch-proxy.* ]]"
check "endpoint status names the Secret" 10 bash -c "[[ \$(kubectl get endpoint main -o jsonpath='{.status.secretName}') == main-credentials ]]"
sed 's/name: main}/name: main-second}/' "$WORK/ep.yaml" | k apply -f - >/dev/null
check "a second ReadWrite endpoint gets Ready=False reason Conflict" 30 bash -c "[[ \$(kubectl get endpoint main-second -o jsonpath='{.status.phase}/{.status.conditions[?(@.type==\"Ready\")].reason}') == Conflict/Conflict ]]"
check "... naming the endpoint that holds the branch" 5 bash -c "kubectl get endpoint main-second -o jsonpath='{.status.conditions[0].message}' | grep -q 'read-write endpoint main'"
sleep 1
if gone pod main-second-compute; then pass "... and no pod for it"; else fail "... and no pod for it"; fi
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: main-ro}
spec: {branch: main, type: ReadOnly}
YAML
check "a ReadOnly endpoint on the same branch is admitted (a pod)" 30 bash -c "kubectl get pod main-ro-compute >/dev/null"

echo "== point in time outside the history: a readable condition"
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: too-early}
spec: {parent: main, timestamp: "2020-01-01T00:00:00Z", noExpiry: true}
YAML
check "too-early Failed with a message that says what to do" 30 bash -c "kubectl get branch too-early -o jsonpath='{.status.conditions[0].message}' | grep -q 'pick a later time'"
k delete branch too-early --wait=false >/dev/null
check "a branch that never got a timeline deletes cleanly" 30 gone branch too-early

echo "== the leader is SIGKILLed mid-reconcile; the standby takes over"
for i in $(seq 1 20); do printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: burst-%02d}\nspec: {parent: main, noExpiry: true}\n---\n' "$i"; done >"$WORK/burst.yaml"
k apply -f "$WORK/burst.yaml" >/dev/null &
apply_pid=$!
sleep 0.3
kill -KILL "${OP_PID[op-a]}"
wait "$apply_pid"
check "op-b holds the Lease" 40 bash -c "[[ \$(kubectl get lease pgbranch-operator -o jsonpath='{.spec.holderIdentity}') == op-b ]]"
check "all 20 burst branches Ready" 60 bash -c "[[ \$(kubectl get branches -o jsonpath='{range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}' | grep -c '^burst-.*=Ready') == 20 ]]"
check "each burst branch has exactly its own timeline (keyed by UID)" 10 bash -c "
  for b in \$(kubectl get branches -o name | grep burst-); do
    uid=\$(kubectl get \$b -o jsonpath='{.metadata.uid}'); tl=\$(kubectl get \$b -o jsonpath='{.status.timelineID}')
    [[ \$uid == \$tl ]] || { echo \"\$b: timeline \$tl uid \$uid\"; exit 1; }
  done"
start_operator op-a  # back as a standby

echo "== the API server restarts; the operator recovers its watches"
bash "$CLUSTER" restart-apiserver >/dev/null 2>&1 || fail "restart-apiserver"
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: after-restart}
spec: {parent: main, noExpiry: true}
YAML
check "a branch created after the restart becomes Ready" 60 is_phase branch after-restart Ready

echo "== delete and create again under the same name: a new timeline"
OLD_UID=$(k get branch after-restart -o jsonpath='{.metadata.uid}')
k delete branch after-restart >/dev/null
cat <<'YAML' | k apply -f - >/dev/null
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: after-restart}
spec: {parent: main, noExpiry: true}
YAML
check "after-restart Ready again" 30 is_phase branch after-restart Ready
NEW_TL=$(k get branch after-restart -o jsonpath='{.status.timelineID}')
if [[ -n $NEW_TL && $NEW_TL != "$OLD_UID" ]]; then pass "it runs on a new timeline"; else fail "it runs on a new timeline" "old $OLD_UID new $NEW_TL"; fi
check "the old timeline is gone" 10 bash -c "$(declare -f timelines no_timeline); BIN=$BIN PS_PORT=$PS_PORT; no_timeline $OLD_UID"

echo "== metrics and health"
port=$(grep -o 'port [0-9]*' "$WORK/op-b.log" | head -1 | awk '{print $2}')
out=$(curl -s "http://127.0.0.1:$port/metrics")
if grep -q 'pgbranch_operator_reconciles_total{kind="branch",result="ok"}' <<<"$out" && grep -q pgbranch_operator_leader <<<"$out"; then
  pass "/metrics serves reconcile counters"; else fail "/metrics serves reconcile counters" "$out"; fi
if [[ $(curl -s "http://127.0.0.1:$port/readyz") == ok ]]; then pass "/readyz ok"; else fail "/readyz ok"; fi

checks_summary "operator test" || exit 1
