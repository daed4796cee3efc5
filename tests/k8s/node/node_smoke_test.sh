#!/usr/bin/env bash
# Tier-3 smoke test of the real node: a private cluster (cluster.sh up --node), the images built
# from debootstrap and imported (scripts/images/build-images.sh --import), then real pods:
#   1. privileged compute pod: /dev/fuse, postgres --version, pagefs --help
#   2. privileged pod mounting pagefs from a pageserver on the host's pod gateway IP, writing a
#      file that the host then exports from the pageserver (FUSE in a pod, pod -> host)
#   3. a postgres pod as uid 10001 (the non-root images): pg_isready and a query from the host
#      to the pod IP (host -> pod), and the pod reaching a listener on the gateway IP
# Everything runs in a private state dir, port, subnet, bridge and kubelet port, and is torn down
# at the end (also on failure). Prints timings. Needs root.
# Env: PGBRANCH_ROOT (repo), PGBRANCH_BIN_DIR (our binaries, default $ROOT/build/bin),
#      PGBRANCH_K8S_BIN (Kubernetes binaries; default: scripts/k8s/build-k8s.sh),
#      PGBRANCH_SMOKE_KEEP=1 keeps the cluster up after the test (prints how to tear it down).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${PGBRANCH_ROOT:-$(cd "$HERE/../../.." && pwd)}
BIN_DIR=${PGBRANCH_BIN_DIR:-$ROOT/build/bin}

if [[ $(id -u) != 0 ]]; then
  echo "SKIP: needs root (containerd, runc, bridge, FUSE)"
  exit 77
fi

now_ms() { date +%s%3N; }
T0=$(now_ms)
declare -A TIMES=()
ORDER=()
mark() { TIMES[$1]=$(( $(now_ms) - $2 )); ORDER+=("$1"); echo "== $1: ${TIMES[$1]} ms"; }
free_port() { python3 "$ROOT/scripts/free-port.py"; }

export PGBRANCH_K8S_DIR=/tmp/pgb-node-smoke.$$
export PGBRANCH_K8S_PORT=$(free_port)
export PGBRANCH_KUBELET_PORT=$(free_port)
export PGBRANCH_POD_SUBNET=10.244.77.0/24
export PGBRANCH_POD_GATEWAY=10.244.77.1
export PGBRANCH_CNI_BRIDGE=pgbsmk0
DIR=$PGBRANCH_K8S_DIR
GW=$PGBRANCH_POD_GATEWAY
CLUSTER=$ROOT/scripts/k8s/cluster.sh
WORK=$(mktemp -d /tmp/pgb-node-smoke-work.XXXXXX)
PS_PID=""
LISTEN_PID=""

dump() {
  echo "----- diagnostics -----"
  if [[ -f $DIR/kubeconfig ]]; then
    kubectl get nodes -o wide || true
    kubectl get pods -o wide || true
    local p
    for p in $(kubectl get pods -o name 2>/dev/null); do
      echo "--- describe $p"; kubectl describe "$p" | tail -n 25 || true
      echo "--- logs $p"; kubectl logs "$p" --tail=30 || true
    done
  fi
  local l
  for l in kubelet containerd kube-apiserver; do
    [[ -f $DIR/logs/$l.log ]] || continue
    echo "--- $l.log (errors)"; grep -E '^E[0-9]|level=error' "$DIR/logs/$l.log" | tail -n 20 || true
  done
  if [[ -f $WORK/pageserver.log ]]; then echo "--- pageserver.log"; tail -n 20 "$WORK/pageserver.log"; fi
  return 0
}

stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  ((rc == 0)) || dump
  stop_pid "$LISTEN_PID"
  stop_pid "$PS_PID"
  if [[ ${PGBRANCH_SMOKE_KEEP:-0} == 1 ]]; then
    echo "kept: source $DIR/env.sh; tear down with PGBRANCH_K8S_DIR=$DIR $CLUSTER down"
  else
    local t=$(now_ms)
    bash "$CLUSTER" down || true
    echo "== teardown: $(( $(now_ms) - t )) ms"
    # nothing of ours may be left
    if ip link show "$PGBRANCH_CNI_BRIDGE" >/dev/null 2>&1; then echo "LEAK: bridge $PGBRANCH_CNI_BRIDGE"; rc=1; fi
    if grep -q " $DIR/" /proc/self/mounts; then echo "LEAK: mounts under $DIR"; rc=1; fi
  fi
  rm -rf "$WORK"; rm -f "$DIR.lock"
  if ((rc == 0)); then echo "PASS k8s_node_smoke_test ($(( $(now_ms) - T0 )) ms)"; else echo "FAIL k8s_node_smoke_test"; fi
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; exit 1; }

# wait_phase POD PHASE TIMEOUT_S
wait_phase() {
  local pod=$1 want=$2 timeout=$3 i p
  for ((i = 0; i < timeout * 10; i++)); do
    p=$(kubectl get pod "$pod" -o jsonpath='{.status.phase}' 2>/dev/null || true)
    [[ $p == "$want" ]] && return 0
    [[ $p == Failed && $want != Failed ]] && fail "pod $pod Failed"
    sleep 0.1
  done
  fail "pod $pod not $want after ${timeout}s (phase '$p')"
}

# ---- cluster + node --------------------------------------------------------------------------
t=$(now_ms)
bash "$CLUSTER" up --node
mark "cluster up --node (control plane + node Ready)" "$t"
# shellcheck disable=SC1091
source "$DIR/env.sh"
# shellcheck disable=SC1091
source "$DIR/node-env.sh"
[[ $(kubectl get node localhost -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]] ||
  fail "node localhost not Ready"
taints=$(kubectl get node localhost -o jsonpath='{.spec.taints[*].key}')
[[ $taints != *not-ready* ]] || fail "node still tainted: $taints"
grep -q "inet $GW/" <<<"$(ip -4 addr show dev "$PGBRANCH_CNI_BRIDGE")" || fail "gateway $GW not on $PGBRANCH_CNI_BRIDGE"

# ---- images ----------------------------------------------------------------------------------
t=$(now_ms)
bash "$ROOT/scripts/images/build-images.sh" --bin-dir "$BIN_DIR" --import
mark "images built + imported" "$t"
images=$(ctr -a "$PGBRANCH_CONTAINERD_SOCK" -n k8s.io images ls -q)
for img in compute proxy pageserver operator pause; do
  grep -qx "docker.io/pgbranch/$img:dev" <<<"$images" || fail "image pgbranch/$img:dev not in containerd"
done

# pods need the default service account (the controller-manager creates it)
for ((i = 0; i < 300; i++)); do kubectl get sa default >/dev/null 2>&1 && break; sleep 0.1; done

# ---- 1. compute image, privileged: FUSE device, postgres, pagefs -----------------------------
t=$(now_ms)
kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: compute-check}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: c
    image: pgbranch/compute:dev
    imagePullPolicy: Never
    securityContext: {privileged: true}
    command: ["/bin/sh", "-c", "ls -l /dev/fuse && /usr/lib/postgresql/15/bin/postgres --version && pagefs --help"]
EOF
wait_phase compute-check Succeeded 120
mark "pod compute-check Succeeded" "$t"
logs=$(kubectl logs compute-check)
echo "$logs"
grep -q '/dev/fuse' <<<"$logs" || fail "no /dev/fuse in the pod"
grep -q 'postgres (PostgreSQL) 15' <<<"$logs" || fail "no postgres 15 in the image"
grep -q 'usage: pagefs' <<<"$logs" || fail "pagefs --help did not print its usage"

# ---- 2. pagefs in a pod against a pageserver on the host's gateway IP ------------------------
if [[ -x $BIN_DIR/pgbranch-pageserver && -x $BIN_DIR/pagectl ]]; then
  t=$(now_ms)
  "$BIN_DIR/pgbranch-pageserver" --data-dir "$WORK/pageserver" --listen "$GW:0" \
    --port-file "$WORK/ps.port" >"$WORK/pageserver.log" 2>&1 &
  PS_PID=$!
  for ((i = 0; i < 100; i++)); do [[ -s $WORK/ps.port ]] && break; sleep 0.05; done
  [[ -s $WORK/ps.port ]] || fail "pageserver did not write its port"
  PS=$GW:$(cat "$WORK/ps.port")
  "$BIN_DIR/pagectl" -q --pageserver "$PS" tenant create --id smoke --root-timeline main
  kubectl apply -f - <<EOF
apiVersion: v1
kind: Pod
metadata: {name: pagefs-check}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  containers:
  - name: c
    image: pgbranch/compute:dev
    imagePullPolicy: Never
    securityContext: {privileged: true}
    command:
    - /bin/bash
    - -c
    - |
      set -e
      mkdir -p /mnt/tl
      pagefs --pageserver $PS --tenant smoke --timeline main --foreground /mnt/tl &
      for i in \$(seq 200); do mountpoint -q /mnt/tl && break; sleep 0.05; done
      mountpoint /mnt/tl
      echo hello-from-pod >/mnt/tl/greeting
      sync /mnt/tl/greeting
      cat /mnt/tl/greeting
      umount /mnt/tl
      wait
      echo pagefs-ok
EOF
  wait_phase pagefs-check Succeeded 120
  mark "pod pagefs-check (FUSE mount from host pageserver) Succeeded" "$t"
  kubectl logs pagefs-check | tail -n 3
  grep -q pagefs-ok <<<"$(kubectl logs pagefs-check)" || fail "pagefs in the pod"
  "$BIN_DIR/pagectl" -q --pageserver "$PS" export --tenant smoke --timeline main "$WORK/export"
  [[ $(cat "$WORK/export/greeting") == hello-from-pod ]] || fail "the pod's file is not on the pageserver"
  echo "host sees the pod's file on the pageserver: ok"
else
  echo "SKIP pagefs-in-pod step: no pgbranch-pageserver/pagectl in $BIN_DIR"
fi

# ---- 3. postgres as a non-root pod: host -> pod IP, pod -> gateway ---------------------------
t=$(now_ms)
kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: postgres}
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
      initdb -D /tmp/pgdata -A trust -U postgres >/tmp/initdb.log &&
      echo 'host all all 0.0.0.0/0 trust' >>/tmp/pgdata/pg_hba.conf &&
      exec postgres -D /tmp/pgdata -c listen_addresses='*' -c unix_socket_directories=/tmp
    readinessProbe:
      exec: {command: ["pg_isready", "-h", "/tmp", "-U", "postgres"]}
      periodSeconds: 1
EOF
kubectl wait --for=condition=Ready pod/postgres --timeout=120s
mark "pod postgres Ready" "$t"
POD_IP=$(kubectl get pod postgres -o jsonpath='{.status.podIP}')
echo "postgres pod IP $POD_IP"
pg_isready -h "$POD_IP" -p 5432 -t 10 || fail "host cannot reach the pod at $POD_IP"
who=$(psql -h "$POD_IP" -U postgres -Atc "select current_user || ' ' || host(inet_client_addr())") ||
  fail "query from the host"
[[ $who == "postgres $GW" ]] || fail "unexpected answer '$who'"
[[ $(kubectl exec postgres -- id -u) == 10001 ]] || fail "postgres pod not running as uid 10001"
# pod -> host: a listener on the gateway IP
python3 - "$GW" "$WORK/listen.port" <<'PY' &
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); s.listen(1)
open(sys.argv[2] + ".tmp", "w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[2] + ".tmp", sys.argv[2])
s.settimeout(60)
c, a = s.accept(); c.sendall(("host-ok " + a[0] + "\n").encode()); c.close()
PY
LISTEN_PID=$!
for ((i = 0; i < 100; i++)); do [[ -s $WORK/listen.port ]] && break; sleep 0.05; done
reply=$(kubectl exec postgres -- bash -c "exec 3<>/dev/tcp/$GW/$(cat "$WORK/listen.port"); cat <&3")
[[ $reply == "host-ok $POD_IP" ]] || fail "pod -> host gateway: got '$reply'"
echo "pod reaches the host at $GW: ok"

echo "== timings (ms)"
for k in "${ORDER[@]}"; do printf '   %-62s %8s\n' "$k" "${TIMES[$k]}"; done
