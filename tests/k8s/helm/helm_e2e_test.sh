#!/usr/bin/env bash
# Tier 5 end to end: pgbranch installed the way users install it, with `helm install`, on the
# tier-3 cluster with a real node (kubelet + containerd + runc), Services (kube-proxy) and cluster
# DNS (CoreDNS): `cluster.sh up --node --services`.
#   1. images built and imported, a static PersistentVolume for the pageserver
#   2. helm install helm/pgbranch -> operator (2 replicas, one leader), pageserver and proxy Ready
#   3. the samples of deploy/samples applied -> main Running; psql from a client pod with the
#      connection string of `kubectl pgbranch connstr` (the credentials Secret's uri: the DNS name
#      of the endpoint -> the proxy Service -> the compute pod)
#   4. the developer and CI branches see main's rows and are isolated; a point-in-time branch
#      and a read-only endpoint at a past time (the samples' timestamps moved into main's
#      history) see main as it was
#   5. helm upgrade with changed values -> rolled out, the pageserver token kept, data answers
#   6. helm uninstall -> CRDs, Branches, the pageserver's PVC and volume and the token stay;
#      helm install again -> the same data answers
# One line per check (PASS/FAIL); diagnostics on failure. Needs root (exit 77 otherwise).
# Env: PGBRANCH_ROOT, PGBRANCH_BIN_DIR, PGBRANCH_K8S_BIN, PGBRANCH_HELM_E2E_NET (third octet of
#      the pod subnet, default 83), PGBRANCH_HELM_E2E_KEEP=1 (keep everything up at the end).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${PGBRANCH_ROOT:-$(cd "$HERE/../../.." && pwd)}
BIN=${PGBRANCH_BIN_DIR:-$ROOT/build/bin}
CLUSTER=$ROOT/scripts/k8s/cluster.sh
NET=${PGBRANCH_HELM_E2E_NET:-83}
NS=pgbranch-system
REL=pgbranch
# shellcheck source=../lib/checks.sh
source "$HERE/../lib/checks.sh"

if [[ $(id -u) != 0 ]]; then echo "SKIP: needs root (containerd, runc, bridge, FUSE)"; exit 77; fi

now_ms() { date +%s%3N; }
log() { echo "[$(date +%H:%M:%S.%3N)] $*"; }
T0=$(now_ms)
k() { kubectl --request-timeout=30s "$@"; }
abort() { fail "$@"; exit 1; }
expect() { # NAME WANT COMMAND...: COMMAND's output equals WANT
  local name=$1 want=$2 out; shift 2
  if out=$("$@" 2>&1) && [[ $out == "$want" ]]; then pass "$name"; return 0; fi
  fail "$name" "want '$want', got: $out"; return 1
}
eventually() { # NAME TIMEOUT_S WANT COMMAND...: COMMAND's output equals WANT within the timeout
  local name=$1 timeout=$2 want=$3 out t0; shift 3
  t0=$(now_ms)
  while :; do
    if out=$("$@" 2>&1) && [[ $out == "$want" ]]; then
      pass "$name (after $(( $(now_ms) - t0 )) ms)"; return 0
    fi
    (( $(now_ms) - t0 >= timeout * 1000 )) && { fail "$name" "want '$want', got: $out"; return 1; }
    sleep 1
  done
}

export PGBRANCH_K8S_DIR=/tmp/pgb-helm-e2e.$$
export PGBRANCH_K8S_PORT=$(free_port)
export PGBRANCH_KUBELET_PORT=$(free_port)
export PGBRANCH_POD_SUBNET=10.244.$NET.0/24
export PGBRANCH_POD_GATEWAY=10.244.$NET.1
export PGBRANCH_CNI_BRIDGE=pgbh$NET
unset KUBECONFIG
WORK=$(mktemp -d /tmp/pgb-helm-e2e-work.XXXXXX)

dump() {
  set +e
  echo "----- diagnostics -----"
  [[ -f ${KUBECONFIG:-/nonexistent} ]] || return 0
  kubectl get pods -A -o wide 2>&1
  kubectl get pgbranch -A -o wide 2>&1
  kubectl get pvc,pv -A 2>&1
  local p
  for p in $(kubectl get pods -n "$NS" -o name 2>/dev/null) $(kubectl get pods -o name 2>/dev/null); do
    echo "--- $p"; kubectl describe "$p" -n "$NS" 2>/dev/null | tail -n 12 || kubectl describe "$p" | tail -n 12
  done
  for p in $(kubectl get pods -n "$NS" -o name 2>/dev/null); do
    echo "--- logs $p"; kubectl logs -n "$NS" "$p" --all-containers --tail=40 2>&1
  done
  for p in $(kubectl get pods -o name 2>/dev/null); do
    echo "--- logs $p"; kubectl logs "$p" --tail=30 2>&1
  done
  echo "--- events"; kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -n 30
  local f
  for f in kubelet containerd kube-proxy coredns; do
    [[ -f $PGBRANCH_K8S_DIR/logs/$f.log ]] || continue
    echo "--- $f.log (errors)"; grep -E '^E[0-9]|level=error|\[ERROR\]' "$PGBRANCH_K8S_DIR/logs/$f.log" | tail -n 15
  done
}

finish() {
  local rc=$?
  set +e
  ((failed > 0)) && rc=1
  ((rc == 0 || rc == 77)) || dump
  if [[ ${PGBRANCH_HELM_E2E_KEEP:-0} == 1 ]]; then
    echo "kept: source $PGBRANCH_K8S_DIR/env.sh; tear down: PGBRANCH_K8S_DIR=$PGBRANCH_K8S_DIR $CLUSTER down"
  else
    bash "$CLUSTER" down >/dev/null 2>&1
    rm -rf "$WORK"
  fi
  ((rc == 77)) && exit 77
  echo "== $passed passed, $failed failed in $(( ($(now_ms) - T0) / 1000 )) s"
  ((failed == 0)) || printf '   failed: %s\n' "${failures[@]}"
  if ((rc == 0)); then echo "PASS k8s_helm_e2e_test"; else echo "FAIL k8s_helm_e2e_test"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

for b in pgbranch-operator pgbranch-compute pagefs pgbranch-proxy pgbranch-pageserver pagectl; do
  [[ -x $BIN/$b ]] || abort "missing $BIN/$b (build it first)"
done

# ---- 1. cluster, images, volume ---------------------------------------------------------------
t=$(now_ms)
log "cluster up --node --services (state $PGBRANCH_K8S_DIR, subnet $PGBRANCH_POD_SUBNET)"
bash "$CLUSTER" up --node --services >"$WORK/cluster-up.log" 2>&1 ||
  { tail -n 30 "$WORK/cluster-up.log"; abort "cluster up --node --services"; }
# shellcheck disable=SC1091
source "$PGBRANCH_K8S_DIR/env.sh"
command -v helm >/dev/null || abort "helm is not on PATH (scripts/k8s/build-k8s.sh builds it)"
log "cluster + node + services up in $(( $(now_ms) - t )) ms"
t=$(now_ms)
bash "$ROOT/scripts/images/build-images.sh" --bin-dir "$BIN" --import >"$WORK/images.log" 2>&1 ||
  { tail -n 30 "$WORK/images.log"; abort "build-images.sh --import"; }
log "images built + imported in $(( $(now_ms) - t )) ms"
bash "$CLUSTER" pv pgbranch-e2e-pageserver 2Gi 10001 >/dev/null || abort "static PersistentVolume"
pass "setup: cluster with a node, Services and DNS; images imported; a 2Gi volume"

# ---- 2. helm install ----------------------------------------------------------------------------
t=$(now_ms)
if out=$(helm install "$REL" "$ROOT/helm/pgbranch" -n "$NS" --create-namespace \
    -f "$HERE/values-e2e.yaml" --wait --timeout 5m 2>&1); then
  pass "helm install (--wait): $(( $(now_ms) - t )) ms"
else
  abort "helm install" "$out"
fi
grep -q 'connstr\|credentials' <<<"$out" && pass "NOTES tell how to read a connection string" ||
  fail "NOTES tell how to read a connection string" "$out"
expect "operator: 2 of 2 replicas ready" 2 k get deploy -n "$NS" "$REL-operator" -o jsonpath='{.status.readyReplicas}'
expect "pageserver-0 Ready" True k get pod -n "$NS" "$REL-pageserver-0" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'
expect "proxy ready" 1 k get deploy -n "$NS" "$REL-proxy" -o jsonpath='{.status.readyReplicas}'
check "one operator replica holds the Lease" 60 bash -c "kubectl get lease -n $NS pgbranch-operator -o jsonpath='{.spec.holderIdentity}' | grep -q ."
expect "the pageserver's claim is Bound to the static volume" "Bound/pgbranch-e2e-pageserver" \
  k get pvc -n "$NS" -l app.kubernetes.io/component=pageserver -o jsonpath='{.items[0].status.phase}/{.items[0].spec.volumeName}'
TOKEN_BEFORE=$(k get secret -n "$NS" "$REL-pageserver-token" -o jsonpath='{.data}' 2>&1)
[[ -n $TOKEN_BEFORE && $TOKEN_BEFORE != *NotFound* ]] && pass "the pageserver token Secret exists" ||
  fail "the pageserver token Secret exists" "$TOKEN_BEFORE"

# ---- 3. samples: main, psql from a pod ---------------------------------------------------------
# A client pod: psql from the compute image, not privileged, in the users' namespace.
k apply -f - >/dev/null <<EOF || abort "client pod"
apiVersion: v1
kind: Pod
metadata: {name: psql-client}
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: psql
    image: pgbranch/compute:dev
    imagePullPolicy: Never
    command: [sleep, infinity]
    securityContext: {runAsUser: 10001, runAsNonRoot: true, allowPrivilegeEscalation: false}
EOF
uri() { k get secret "$1-credentials" -o jsonpath='{.data.uri}' | base64 -d; }
# q ENDPOINT SQL: one query from the client pod with the endpoint's connection string, as
# `kubectl pgbranch connstr` prints it (for a read-only endpoint: the branch's password, which
# its read-write endpoint set; the endpoint's own Secret cannot set a password on a standby).
q() {
  local u; u=$(PATH=$BIN:$PATH kubectl pgbranch connstr "$1") || return 1
  # psql's errors go to the exec's stdout; kubectl's own stderr (websocket chatter) is dropped.
  kubectl exec psql-client -- sh -c \
    'PGCONNECT_TIMEOUT=120 psql "$1" -X -v ON_ERROR_STOP=1 -Atqc "$2" 2>&1' sh "$u" "$2" 2>/dev/null
}
phase() { k get "endpoints.pgbranch.io/$1" -o jsonpath='{.status.phase}'; }
ready() { [[ $(k get "branches.pgbranch.io/$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }

t=$(now_ms)
k apply -f "$ROOT/deploy/samples/01-branch-main.yaml" -f "$ROOT/deploy/samples/02-endpoint-main.yaml" >/dev/null ||
  abort "apply samples 01, 02"
check "Branch main Ready" 120 ready main
check "Endpoint main Running" 240 bash -c "[[ \$(kubectl get endpoints.pgbranch.io/main -o jsonpath='{.status.phase}') == Running ]]"
log "main: Branch + Endpoint to Running in $(( $(now_ms) - t )) ms"
k wait --for=condition=Ready pod/psql-client --timeout=120s >/dev/null || abort "client pod Ready"
URI=$(uri main)
expect "kubectl pgbranch connstr main prints the Secret's uri" "$URI" env PATH="$BIN:$PATH" kubectl pgbranch connstr main
[[ $URI == *"main.default.svc"* ]] && pass "the uri names the endpoint's Service (main.default.svc)" ||
  fail "the uri names the endpoint's Service" "$(sed -E 's#(//[^:]+:)[^@]+@#\1***@#' <<<"$URI")"
if out=$(q main "create table items(id int primary key, name text);
                 insert into items select g, 'item-' || g from generate_series(1, 100) g;
                 select count(*) from items" 2>&1) && [[ $out == 100 ]]; then
  pass "psql from a pod through the proxy Service: create table, 100 rows on main"
else
  abort "psql from a pod through the proxy Service" "$out"
fi
# The moment the point-in-time samples will go back to (main's history has it).
sleep 1.5
AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.5
expect "a later change on main" 90 q main "delete from items where id > 90; select count(*) from items"

# ---- 4. developer, CI, point-in-time, read-only at a time --------------------------------------
k apply -f "$ROOT/deploy/samples/03-branch-dev-alex.yaml" -f "$ROOT/deploy/samples/04-branch-ci.yaml" >/dev/null ||
  fail "apply samples 03, 04"
sed -E "s/timestamp: \"[^\"]*\"/timestamp: \"$AT\"/" "$ROOT/deploy/samples/05-branch-point-in-time.yaml" >"$WORK/05.yaml"
sed -E "s/timestamp: \"[^\"]*\"/timestamp: \"$AT\"/" "$ROOT/deploy/samples/06-endpoint-read-only-at-time.yaml" >"$WORK/06.yaml"
k apply -f "$WORK/05.yaml" -f "$WORK/06.yaml" >/dev/null || fail "apply samples 05, 06 (timestamp $AT)"
for b in dev-alex ci-run-1234 before-migration; do check "Branch $b Ready" 120 ready "$b"; done
for e in dev-alex ci-run-1234 main-yesterday; do
  check "Endpoint $e Running" 240 bash -c "[[ \$(kubectl get endpoints.pgbranch.io/$e -o jsonpath='{.status.phase}') == Running ]]"
done
expect "dev-alex sees main's rows" 90 q dev-alex "select count(*) from items"
expect "a row inserted on dev-alex" 91 q dev-alex "insert into items values (1000, 'alex'); select count(*) from items"
expect "ci-run-1234 does not see dev-alex's row" 0 q ci-run-1234 "select count(*) from items where id = 1000"
expect "main does not see dev-alex's row" 90 q main "select count(*) from items"
expect "read-only endpoint at $AT sees main as it was (100 rows)" 100 q main-yesterday "select count(*) from items"
if out=$(q main-yesterday "delete from items" 2>&1); then
  fail "the read-only endpoint refuses writes" "$out"
else
  pass "the read-only endpoint refuses writes ($(grep -o 'read-only[^"]*' <<<"$out" | head -n 1))"
fi
k apply -f - >/dev/null <<EOF || fail "endpoint on before-migration"
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: before-migration}
spec: {branch: before-migration, suspendTimeout: 60s}
EOF
check "Endpoint before-migration Running" 240 bash -c "[[ \$(kubectl get endpoints.pgbranch.io/before-migration -o jsonpath='{.status.phase}') == Running ]]"
expect "point-in-time branch at $AT has main's 100 rows" 100 q before-migration "select count(*) from items"

# ---- 5. helm upgrade with changed values --------------------------------------------------------
t=$(now_ms)
if out=$(helm upgrade "$REL" "$ROOT/helm/pgbranch" -n "$NS" -f "$HERE/values-e2e.yaml" \
    --set proxy.replicas=2 --set operator.logLevel=debug --wait --timeout 5m 2>&1); then
  pass "helm upgrade (proxy.replicas=2, operator.logLevel=debug): $(( $(now_ms) - t )) ms"
else
  fail "helm upgrade" "$out"
fi
expect "proxy: 2 replicas ready after the upgrade" 2 k get deploy -n "$NS" "$REL-proxy" -o jsonpath='{.status.readyReplicas}'
check "operator pods run with --log-level debug" 120 bash -c \
  "kubectl get deploy -n $NS $REL-operator -o jsonpath='{.spec.template.spec.containers[0].args}' | grep -q debug && [[ \$(kubectl get deploy -n $NS $REL-operator -o jsonpath='{.status.updatedReplicas}/{.status.readyReplicas}') == 2/2 ]]"
expect "the pageserver token Secret is unchanged by the upgrade" "$TOKEN_BEFORE" \
  k get secret -n "$NS" "$REL-pageserver-token" -o jsonpath='{.data}'
expect "main answers after the upgrade" 90 q main "select count(*) from items"
expect "dev-alex answers after the upgrade" 91 q dev-alex "select count(*) from items"

# ---- 6. helm uninstall keeps the CRDs and the data ----------------------------------------------
t=$(now_ms)
if out=$(helm uninstall "$REL" -n "$NS" --wait --timeout 3m 2>&1); then
  pass "helm uninstall: $(( $(now_ms) - t )) ms"
else
  fail "helm uninstall" "$out"
fi
check "operator, pageserver and proxy pods are gone" 120 bash -c "[[ -z \$(kubectl get pods -n $NS -o name) ]]"
expect "the CRDs stay" "branches.pgbranch.io endpoints.pgbranch.io" \
  k get crd branches.pgbranch.io endpoints.pgbranch.io -o jsonpath='{.items[*].metadata.name}'
expect "the Branches stay" 4 bash -c "kubectl get branches.pgbranch.io -o name | wc -l | tr -d ' '"
expect "the pageserver's claim stays Bound" Bound \
  k get pvc -n "$NS" -l app.kubernetes.io/component=pageserver -o jsonpath='{.items[0].status.phase}'
expect "the pageserver token Secret stays" "$TOKEN_BEFORE" k get secret -n "$NS" "$REL-pageserver-token" -o jsonpath='{.data}'
t=$(now_ms)
if out=$(helm install "$REL" "$ROOT/helm/pgbranch" -n "$NS" -f "$HERE/values-e2e.yaml" \
    --wait --timeout 5m 2>&1); then
  pass "helm install again over the kept CRDs, volume and token: $(( $(now_ms) - t )) ms"
else
  fail "helm install again" "$out"
fi
# Computes that were running lost the pageserver while it was uninstalled: each exits, and the
# new operator starts it again; until then a client may be told the endpoint Failed.
eventually "main answers with its data after reinstalling" 240 90 q main "select count(*) from items"
eventually "dev-alex keeps its own row after reinstalling" 240 alex q dev-alex "select name from items where id = 1000"

checks_summary "helm e2e" >/dev/null || true
