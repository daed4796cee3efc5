#!/usr/bin/env bash
# Tier-3 test of `scripts/k8s/cluster.sh up --node --services`: Services, cluster DNS and
# in-cluster API access in the private test cluster, with real pods from the locally built images.
#   - DNS from a pod: kubernetes.default.svc.cluster.local (and the short name through the search
#     path), a ClusterIP Service, an ExternalName Service (CNAME), a headless Service and a
#     StatefulSet pod name; a name outside cluster.local fails (NXDOMAIN, no upstream)
#   - TCP to a ClusterIP Service backed by a PostgreSQL pod: from another pod, from the host
#     (ClusterIP and NodePort on the gateway), and hairpin (the backend pod through its own Service)
#   - `cluster.sh pv`: the StatefulSet's PGDATA on a static hostPath PV (uid 10001)
#   - in-cluster API access: the ServiceAccount token of a pod whose Role allows pods, over TLS to
#     10.96.0.1:443 verified against the mounted CA and the name kubernetes.default.svc: 200 in its
#     namespace, 403 elsewhere; and pgbranch-proxy --kubernetes (our real in-cluster client) in a
#     pod lists Endpoints and Pods with that ServiceAccount
#   - `down` leaves no kube-proxy netfilter state (nft tables, iptables KUBE-* chains of
#     kube-proxy), no CoreDNS listener, route, bridge or claim behind.
# Private state dir, ports, subnet 10.244.79.0/24, bridge pgbsvc79; torn down also on failure.
# Needs root (exit 77 without; also 77 when another cluster with Services runs on the machine).
# PGBRANCH_KUBE_PROXY_MODE=iptables runs it all with kube-proxy's iptables mode (the fallback).
# Env: PGBRANCH_ROOT, PGBRANCH_BIN_DIR (our binaries for the images), PGBRANCH_K8S_BIN,
#      PGBRANCH_SVC_KEEP=1 keeps the cluster up afterwards (prints how to tear it down).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${PGBRANCH_ROOT:-$(cd "$HERE/../../.." && pwd)}
BIN_DIR=${PGBRANCH_BIN_DIR:-$ROOT/build/bin}
# shellcheck disable=SC1091  # pass/fail/check, counters passed/failed
source "$ROOT/tests/k8s/lib/checks.sh"

if [[ $(id -u) != 0 ]]; then
  echo "SKIP: needs root (bridge, netfilter, containerd, port 53)"
  exit 77
fi
CLUSTER=$ROOT/scripts/k8s/cluster.sh
if ! bash "$ROOT/scripts/k8s/services.sh" check; then
  echo "SKIP: another test cluster with Services runs on this machine"
  exit 77
fi

now_ms() { date +%s%3N; }
T0=$(now_ms)
export PGBRANCH_K8S_DIR=/tmp/pgb-svc-test.$$
PGBRANCH_K8S_PORT=$(free_port)
PGBRANCH_KUBELET_PORT=$(free_port)
export PGBRANCH_K8S_PORT PGBRANCH_KUBELET_PORT
export PGBRANCH_POD_SUBNET=10.244.79.0/24
export PGBRANCH_POD_GATEWAY=10.244.79.1
export PGBRANCH_CNI_BRIDGE=pgbsvc79
DIR=$PGBRANCH_K8S_DIR
GW=$PGBRANCH_POD_GATEWAY
NS=svc-test

dump() {
  echo "----- diagnostics -----"
  [[ -f $DIR/kubeconfig ]] || return 0
  kubectl get pods,svc,endpointslices -A -o wide 2>&1 | head -n 40 || true
  local p
  for p in $(kubectl -n "$NS" get pods -o name 2>/dev/null); do
    echo "--- logs $p"; kubectl -n "$NS" logs "$p" --tail=15 2>&1 || true
  done
  for p in kube-proxy coredns kube-apiserver kubelet; do
    [[ -f $DIR/logs/$p.log ]] || continue
    echo "--- $p.log (errors)"; grep -E '^E[0-9]|\[ERROR\]' "$DIR/logs/$p.log" | tail -n 10 || true
  done
}

# the netfilter objects only kube-proxy makes
kube_proxy_netfilter() {
  local out=""
  if command -v nft >/dev/null; then
    out+=$(nft list tables 2>/dev/null | grep -E '^table (ip|ip6) kube-proxy$' || true)
  fi
  local ipt
  for ipt in iptables-save ip6tables-save; do
    command -v "$ipt" >/dev/null || continue
    out+=$("$ipt" 2>/dev/null | grep -E '^:KUBE-(SERVICES|NODEPORTS|POSTROUTING|PROXY-CANARY|EXTERNAL-SERVICES|FORWARD|PROXY-FIREWALL|MARK-MASQ) ' | sed "s/^/$ipt /" || true)
  done
  echo "$out"
}

DOWN_DONE=0
cleanup() {
  local rc=$?
  set +e
  # shellcheck disable=SC2154  # failed: from checks.sh
  ((rc == 0 && failed == 0)) || dump
  if [[ ${PGBRANCH_SVC_KEEP:-0} == 1 ]]; then
    echo "kept: source $DIR/env.sh; tear down with PGBRANCH_K8S_DIR=$DIR $CLUSTER down"
  elif ((!DOWN_DONE)); then
    bash "$CLUSTER" down
  fi
  rm -f "$DIR.lock"
  exit $rc
}
trap cleanup EXIT

in_pod() { kubectl -n "$NS" exec "$1" -- bash -c "$2"; }

# ---- cluster with Services ---------------------------------------------------------------------
t=$(now_ms)
if ! bash "$CLUSTER" up --node --services; then
  fail "cluster.sh up --node --services"
  checks_summary services_test
  exit 1
fi
echo "== up --node --services: $(($(now_ms) - t)) ms"
# shellcheck disable=SC1091
source "$DIR/env.sh"
[[ ${PGBRANCH_K8S_SERVICES:-} == 1 && ${PGBRANCH_CLUSTER_DNS:-} == "$GW" ]] && pass "env.sh exports PGBRANCH_K8S_SERVICES=1 and PGBRANCH_CLUSTER_DNS=$GW" ||
  fail "env.sh exports" "$(cat "$DIR/env.sh")"
listen=$(ss -Hltn "sport = :$PGBRANCH_K8S_PORT" | awk '{print $4}')
[[ $listen == "$GW:$PGBRANCH_K8S_PORT" ]] && pass "API server listens on the gateway only ($listen)" ||
  fail "API server listen address" "$listen"
eps=$(kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes -o jsonpath='{.items[0].endpoints[0].addresses[0]}:{.items[0].ports[0].port}')
[[ $eps == "$GW:$PGBRANCH_K8S_PORT" ]] && pass "kubernetes EndpointSlice = $eps" || fail "kubernetes EndpointSlice" "$eps"
status=$(bash "$CLUSTER" status 2>&1) && grep -q '^kube-proxy .*running' <<<"$status" && grep -q '^coredns .*running' <<<"$status" &&
  pass "cluster.sh status shows kube-proxy and coredns running" || fail "cluster.sh status" "$status"

t=$(now_ms)
bash "$ROOT/scripts/images/build-images.sh" --bin-dir "$BIN_DIR" --import
echo "== images built + imported: $(($(now_ms) - t)) ms"

# ---- workloads ---------------------------------------------------------------------------------
for ((i = 0; i < 300; i++)); do kubectl get sa default >/dev/null 2>&1 && break; sleep 0.1; done
kubectl create namespace "$NS" >/dev/null
# pgbranch-proxy --kubernetes watches the pgbranch.io Endpoints
kubectl apply -f "$ROOT/crds/endpoints.pgbranch.io.yaml" >/dev/null
bash "$CLUSTER" established crd/endpoints.pgbranch.io
# the StatefulSet's PGDATA on a static hostPath PV (storageClassName pgbranch-test)
bash "$CLUSTER" pv data-db-0 1Gi 10001
for ((i = 0; i < 300; i++)); do kubectl -n "$NS" get sa default >/dev/null 2>&1 && break; sleep 0.1; done
kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: db, namespace: $NS}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: $NS}
spec:
  type: NodePort
  selector: {app: db}
  ports: [{name: pg, port: 5432, targetPort: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: $NS}
spec:
  type: ExternalName
  externalName: pg.$NS.svc.cluster.local
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: $NS}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsUser: 10001, runAsGroup: 10001}
      containers:
      - name: pg
        image: pgbranch/proxy:dev
        imagePullPolicy: Never
        command:
        - /bin/sh
        - -c
        - >-
          initdb -D /data/pgdata -A trust -U postgres >/tmp/initdb.log &&
          echo 'host all all 0.0.0.0/0 trust' >>/data/pgdata/pg_hba.conf &&
          exec postgres -D /data/pgdata -c listen_addresses='*' -c unix_socket_directories=/tmp
        readinessProbe:
          exec: {command: ["pg_isready", "-h", "/tmp", "-U", "postgres"]}
          periodSeconds: 1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      storageClassName: pgbranch-test
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: $NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: $NS}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [pgbranch.io]
  resources: [endpoints]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: $NS}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: ServiceAccount, name: reader, namespace: $NS}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: $NS}
spec:
  serviceAccountName: reader
  containers:
  - name: c
    image: pgbranch/compute:dev
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "exec sleep infinity"]
---
apiVersion: v1
kind: Pod
metadata: {name: proxy, namespace: $NS}
spec:
  serviceAccountName: reader
  securityContext: {runAsUser: 10001}
  containers:
  - name: p
    image: pgbranch/proxy:dev
    imagePullPolicy: Never
    command: ["pgbranch-proxy", "--kubernetes", "--listen", "127.0.0.1:0"]
EOF
t=$(now_ms)
kubectl -n "$NS" wait --for=condition=Ready pod/db-0 pod/client --timeout=180s >/dev/null ||
  { fail "pods db-0 and client Ready"; checks_summary services_test; exit 1; }
echo "== pods Ready: $(($(now_ms) - t)) ms"
CIP=$(kubectl -n "$NS" get svc pg -o jsonpath='{.spec.clusterIP}')
NPORT=$(kubectl -n "$NS" get svc pg -o jsonpath='{.spec.ports[0].nodePort}')
DB_IP=$(kubectl -n "$NS" get pod db-0 -o jsonpath='{.status.podIP}')
echo "Service pg: ClusterIP $CIP, NodePort $NPORT; db-0 at $DB_IP"
pvc=$(kubectl -n "$NS" get pvc data-db-0 -o jsonpath='{.status.phase} {.spec.volumeName}')
[[ $pvc == "Bound data-db-0" && $(cat "$DIR/pv/data-db-0/pgdata/PG_VERSION" 2>/dev/null) == 15 ]] &&
  pass "cluster.sh pv: PVC data-db-0 Bound to the static PV, PGDATA written as uid 10001 on $DIR/pv/data-db-0" ||
  fail "cluster.sh pv" "$pvc; $(ls -la "$DIR/pv/data-db-0" 2>&1)"

# ---- DNS ---------------------------------------------------------------------------------------
resolv=$(in_pod client 'cat /etc/resolv.conf')
grep -q "^nameserver $GW\$" <<<"$resolv" && grep -q "^search $NS.svc.cluster.local svc.cluster.local cluster.local" <<<"$resolv" &&
  pass "pod resolv.conf: nameserver $GW, search $NS.svc.cluster.local ..." || fail "pod resolv.conf" "$resolv"
# getent_is POD NAME IP: NAME resolves to IP in POD (ok once the DNS cache has the new object)
getent_is() { local out; out=$(in_pod "$1" "getent hosts $2") && [[ $(awk '{print $1}' <<<"$out" | head -n1) == "$3" ]] || { echo "$out"; return 1; }; }
check "DNS kubernetes.default.svc.cluster.local -> 10.96.0.1" 30 getent_is client kubernetes.default.svc.cluster.local 10.96.0.1 || true
check "DNS kubernetes.default (search path) -> 10.96.0.1" 30 getent_is client kubernetes.default 10.96.0.1 || true
check "DNS pg.$NS.svc.cluster.local (ClusterIP Service) -> $CIP" 30 getent_is client "pg.$NS.svc.cluster.local" "$CIP" || true
check "DNS ext.$NS.svc.cluster.local (ExternalName CNAME to pg) -> $CIP" 30 getent_is client "ext.$NS.svc.cluster.local" "$CIP" || true
check "DNS db.$NS.svc.cluster.local (headless Service) -> pod $DB_IP" 30 getent_is client "db.$NS.svc.cluster.local" "$DB_IP" || true
check "DNS db-0.db.$NS.svc.cluster.local (StatefulSet pod) -> $DB_IP" 30 getent_is client "db-0.db.$NS.svc.cluster.local" "$DB_IP" || true
out=$(in_pod client 'timeout 20 getent hosts no-such-host.example.org; echo rc=$?') || true
[[ $out == rc=2 ]] && pass "DNS outside cluster.local: not found (no upstream)" || fail "DNS outside cluster.local" "$out"

# ---- Services ----------------------------------------------------------------------------------
q="select current_setting('port')"
check "pod -> ClusterIP Service (psql -h pg, short name)" 30 \
  bash -c "[[ \$(kubectl -n $NS exec client -- psql -h pg -U postgres -Atc \"$q\") == 5432 ]]" || true
check "host -> ClusterIP $CIP:5432 (psql)" 30 \
  bash -c "[[ \$(psql -h $CIP -U postgres -Atc \"$q\") == 5432 ]]" || true
check "host -> NodePort $GW:$NPORT (psql)" 30 \
  bash -c "[[ \$(psql -h $GW -p $NPORT -U postgres -Atc \"$q\") == 5432 ]]" || true
check "hairpin: db-0 -> its own Service pg" 30 \
  bash -c "[[ \$(kubectl -n $NS exec db-0 -- psql -h pg.$NS.svc.cluster.local -U postgres -Atc \"$q\") == 5432 ]]" || true

# ---- in-cluster API access ---------------------------------------------------------------------
# api_status PATH: the HTTP status of GET PATH with the pod's ServiceAccount token, TLS verified
# against the mounted CA and the name kubernetes.default.svc
cat >"$DIR/api.sh" <<'EOF'
sa=/var/run/secrets/kubernetes.io/serviceaccount
printf 'GET %s HTTP/1.1\r\nHost: kubernetes.default.svc\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n' "$1" "$(cat $sa/token)" |
  timeout 20 openssl s_client -quiet -connect "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT" \
    -servername kubernetes.default.svc -verify_hostname kubernetes.default.svc -verify_return_error \
    -CAfile $sa/ca.crt 2>/dev/null | head -n1 | tr -d '\r'
EOF
api_status() { kubectl -n "$NS" exec -i client -- bash -s -- "$1" <"$DIR/api.sh"; }
env_host=$(in_pod client 'echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT')
[[ $env_host == 10.96.0.1:443 ]] && pass "pod env KUBERNETES_SERVICE_HOST:PORT = 10.96.0.1:443" || fail "pod env" "$env_host"
out=$(api_status "/api/v1/namespaces/$NS/pods")
[[ $out == "HTTP/1.1 200 OK" ]] && pass "ServiceAccount token + Role: list pods in $NS -> 200 (TLS verified)" || fail "list pods in $NS" "$out"
out=$(api_status "/api/v1/namespaces/kube-system/pods")
[[ $out == "HTTP/1.1 403 Forbidden" ]] && pass "RBAC: list pods in kube-system -> 403" || fail "RBAC denial" "$out"
# pgbranch-proxy --kubernetes, in-cluster config: its informers list within 10 s or it warns
proxy_synced() {
  local l
  l=$(kubectl -n "$NS" logs proxy 2>&1) || { echo "$l"; return 1; }
  grep -q 'in-cluster' <<<"$l" && ! grep -qE 'not listed yet|forbidden' <<<"$l" || { echo "$l"; return 1; }
}
kubectl -n "$NS" wait --for=condition=Ready pod/proxy --timeout=60s >/dev/null || true
check "pgbranch-proxy --kubernetes in a pod: in-cluster config, Endpoints and Pods listed" 30 proxy_synced || true

# ---- down --------------------------------------------------------------------------------------
before=$(kube_proxy_netfilter)
[[ -n $before ]] && pass "kube-proxy netfilter state present while up" || fail "no kube-proxy netfilter state while up"
t=$(now_ms)
DOWN_DONE=1
bash "$CLUSTER" down
echo "== down: $(($(now_ms) - t)) ms"
# kube-proxy's netfilter state is machine-wide: once our claim is released another cluster may
# take the machine's Services at once; what is there then is its own, not a leftover of ours
owner_before=$(cat /tmp/pgbranch-k8s-services.owner 2>/dev/null || true)
left=$(kube_proxy_netfilter)
owner_after=$(cat /tmp/pgbranch-k8s-services.owner 2>/dev/null || true)
if [[ -n $owner_before$owner_after && $owner_before$owner_after != "$DIR$DIR" ]]; then
  echo "NOTE  down: netfilter check skipped: ${owner_after:-$owner_before} took the machine's Services after our down"
elif [[ -z $left ]]; then
  pass "down: no kube-proxy netfilter tables/chains left"
else
  fail "down left netfilter state" "$left"
fi
left=$(ss -Hlun "sport = :53" | grep -F "$GW:53" || true)
[[ -z $left ]] && pass "down: CoreDNS no longer listens on $GW:53" || fail "CoreDNS still listening" "$left"
left=$(ip route show 10.96.0.0/16 | grep -w "dev $PGBRANCH_CNI_BRIDGE"; ip link show "$PGBRANCH_CNI_BRIDGE" 2>/dev/null || true)
[[ -z $left ]] && pass "down: Service route and bridge gone" || fail "route/bridge left" "$left"
owner=$(cat /tmp/pgbranch-k8s-services.owner 2>/dev/null || true)
[[ $owner != "$DIR" ]] && pass "down: machine claim released" || fail "claim left" "$owner"

echo "== total: $(($(now_ms) - T0)) ms"
checks_summary services_test
