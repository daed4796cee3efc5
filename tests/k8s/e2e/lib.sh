# shellcheck shell=bash
# Shared setup of the Kubernetes end-to-end test (tests/k8s/e2e/e2e_test.sh) and benchmark
# (scripts/bench-k8s-e2e.sh): a private cluster with a real node (scripts/k8s/cluster.sh up
# --node), the images built and imported, the CRDs, a pageserver on the host's pod gateway, the
# proxy as a hostNetwork pod (pgbranch-proxy --kubernetes) and the operator on the host.
#
# Sourced, not run. The caller sets E2E_NAME (used in state dir names) and E2E_NET (third octet
# of the private pod subnet 10.244.E2E_NET.0/24; two setups at once need different values), then
# calls e2e_setup; it installs nothing itself on failure paths: the caller's EXIT trap calls
# e2e_teardown (and e2e_dump first when it failed).
#
# After e2e_setup: KUBECONFIG/PATH (kubectl), E2E_WORK (logs: operator.log, pageserver.log),
# E2E_PROXY_PORT (psql connects to 127.0.0.1:E2E_PROXY_PORT), E2E_GW, E2E_PS (pageserver),
# E2E_SIGNING_KEY (the pageserver's token signing key: `pagectl token mint` for admin calls).
# Env: PGBRANCH_ROOT, PGBRANCH_BIN_DIR, PGBRANCH_K8S_BIN (Kubernetes binaries),
#      PGBRANCH_E2E_KEEP=1 keeps everything up at the end (prints how to tear it down).

E2E_ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
E2E_BIN=${PGBRANCH_BIN_DIR:-$E2E_ROOT/build/bin}
E2E_CLUSTER=$E2E_ROOT/scripts/k8s/cluster.sh
E2E_OP_PID=""
E2E_PS_PID=""

now_ms() { date +%s%3N; }
free_port() { python3 "$E2E_ROOT/scripts/free-port.py"; }
e2e_log() { echo "[$(date +%H:%M:%S.%3N)] $*"; }
k() { kubectl --request-timeout=30s "$@"; }

# wait_until TIMEOUT_S COMMAND...: 0 once COMMAND succeeds, 1 after the timeout (last output in
# $WAIT_OUT).
WAIT_OUT=""
wait_until() {
  local timeout=$1; shift
  local deadline=$(( $(now_ms) + timeout * 1000 ))
  while :; do
    if WAIT_OUT=$("$@" 2>&1); then return 0; fi
    (( $(now_ms) >= deadline )) && return 1
    sleep 0.1
  done
}

e2e_stop_pid() {
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

# e2e_setup: everything up; returns non-zero (with a message) when a step fails.
e2e_setup() {
  local t i
  if [[ $(id -u) != 0 ]]; then echo "SKIP: needs root (containerd, runc, bridge, FUSE)"; return 77; fi
  for b in pgbranch-operator pgbranch-compute pagefs pgbranch-proxy pgbranch-pageserver pagectl; do
    [[ -x $E2E_BIN/$b ]] || { echo "missing $E2E_BIN/$b (build it first)"; return 1; }
  done
  export PGBRANCH_K8S_DIR=${PGBRANCH_E2E_DIR:-/tmp/pgb-$E2E_NAME.$$}
  export PGBRANCH_K8S_PORT=$(free_port)
  export PGBRANCH_KUBELET_PORT=$(free_port)
  export PGBRANCH_POD_SUBNET=10.244.$E2E_NET.0/24
  export PGBRANCH_POD_GATEWAY=10.244.$E2E_NET.1
  export PGBRANCH_CNI_BRIDGE=pgbe$E2E_NET
  unset KUBECONFIG
  E2E_GW=$PGBRANCH_POD_GATEWAY
  E2E_WORK=$(mktemp -d "/tmp/pgb-$E2E_NAME-work.XXXXXX")

  t=$(now_ms)
  e2e_log "cluster up --node (state $PGBRANCH_K8S_DIR, API port $PGBRANCH_K8S_PORT, subnet $PGBRANCH_POD_SUBNET)"
  bash "$E2E_CLUSTER" up --node >"$E2E_WORK/cluster-up.log" 2>&1 ||
    { tail -n 30 "$E2E_WORK/cluster-up.log"; echo "cluster up --node failed"; return 1; }
  # shellcheck disable=SC1091
  source "$PGBRANCH_K8S_DIR/env.sh"
  # shellcheck disable=SC1091
  source "$PGBRANCH_K8S_DIR/node-env.sh"
  e2e_log "cluster + node up in $(( $(now_ms) - t )) ms"

  t=$(now_ms)
  bash "$E2E_ROOT/scripts/images/build-images.sh" --bin-dir "$E2E_BIN" --import >"$E2E_WORK/images.log" 2>&1 ||
    { tail -n 30 "$E2E_WORK/images.log"; echo "build-images.sh --import failed"; return 1; }
  e2e_log "images built + imported in $(( $(now_ms) - t )) ms"

  k apply --server-side -f "$E2E_ROOT/crds/" >/dev/null || { echo "CRDs apply failed"; return 1; }
  bash "$E2E_CLUSTER" established crd/branches.pgbranch.io crd/endpoints.pgbranch.io crd/promotions.pgbranch.io ||
    { echo "CRDs not Established"; return 1; }
  # pods need the default service account (the controller-manager creates it)
  wait_until 60 kubectl get sa default || { echo "no default ServiceAccount"; return 1; }

  # pageserver on the pod gateway: the host (operator) and the pods reach it there. Auth on, as
  # the chart runs it: signed tokens; the operator holds the key and gives each compute pod a
  # tenant token (Secret <endpoint>-pageserver-token).
  local ps_port
  E2E_SIGNING_KEY=$E2E_WORK/signing-key
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$E2E_SIGNING_KEY")
  "$E2E_BIN/pgbranch-pageserver" --data-dir "$E2E_WORK/pageserver" --listen "$E2E_GW:0" \
    --token-signing-key-file "$E2E_SIGNING_KEY" \
    --port-file "$E2E_WORK/ps.port" >"$E2E_WORK/pageserver.log" 2>&1 &
  E2E_PS_PID=$!
  wait_until 10 test -s "$E2E_WORK/ps.port" || { echo "pageserver did not write its port"; return 1; }
  ps_port=$(cat "$E2E_WORK/ps.port")
  E2E_PS=$E2E_GW:$ps_port
  if "$E2E_BIN/pagectl" --pageserver "$E2E_PS" tenant list >/dev/null 2>&1; then
    echo "the pageserver answered without a token (auth is not on)"; return 1
  fi

  # proxy: a hostNetwork pod listening on the host's loopback, reading the API server through
  # the admin kubeconfig (hostPath; with hostNetwork it reaches the API server on 127.0.0.1)
  E2E_PROXY_PORT=$(free_port)
  k apply -f - >/dev/null <<EOF || { echo "proxy pod apply failed"; return 1; }
apiVersion: v1
kind: Pod
metadata:
  name: pgbranch-proxy
  labels: {app.kubernetes.io/name: pgbranch-proxy}
spec:
  hostNetwork: true
  automountServiceAccountToken: false
  containers:
  - name: proxy
    image: pgbranch/compute:dev
    imagePullPolicy: Never
    command: [pgbranch-proxy, --kubernetes, --kubeconfig, /etc/pgbranch/kubeconfig,
              --namespaces, default, --listen, "127.0.0.1:$E2E_PROXY_PORT", --wake-timeout, 180s]
    readinessProbe:
      tcpSocket: {host: 127.0.0.1, port: $E2E_PROXY_PORT}
      periodSeconds: 1
    volumeMounts:
    - {name: kubeconfig, mountPath: /etc/pgbranch/kubeconfig, readOnly: true}
  volumes:
  - name: kubeconfig
    hostPath: {path: $KUBECONFIG, type: File}
EOF

  "$E2E_BIN/pgbranch-operator" --kubeconfig "$KUBECONFIG" --pageserver "$E2E_PS" \
    --pageserver-signing-key-file "$E2E_SIGNING_KEY" \
    --compute-pageserver "$E2E_PS" --compute-image pgbranch/compute:dev --image-pull-policy Never \
    --proxy-host 127.0.0.1 --proxy-port "$E2E_PROXY_PORT" --listen 127.0.0.1:0 --leader-elect false \
    --log-level "${PGBRANCH_E2E_OPERATOR_LOG_LEVEL:-info}" >"$E2E_WORK/operator.log" 2>&1 &
  E2E_OP_PID=$!

  k wait --for=condition=Ready pod/pgbranch-proxy --timeout=120s >/dev/null ||
    { echo "proxy pod not Ready"; return 1; }
  kill -0 "$E2E_OP_PID" 2>/dev/null || { echo "operator exited"; return 1; }
  e2e_log "pageserver $E2E_PS, proxy 127.0.0.1:$E2E_PROXY_PORT (pod, hostNetwork), operator pid $E2E_OP_PID"
}

e2e_dump() {
  set +e
  echo "----- diagnostics -----"
  if [[ -n ${KUBECONFIG:-} && -f ${KUBECONFIG:-} ]]; then
    kubectl get branches.pgbranch.io,endpoints.pgbranch.io -o wide 2>&1
    kubectl get pods -o wide 2>&1
    kubectl get endpoints.pgbranch.io -o yaml 2>&1 | grep -A30 '^  status:' | head -n 80
    local p
    for p in $(kubectl get pods -o name 2>/dev/null); do
      echo "--- describe $p (tail)"; kubectl describe "$p" | tail -n 15
      echo "--- logs $p"; kubectl logs "$p" --tail=40 2>&1
    done
    echo "--- events"; kubectl get events --sort-by=.lastTimestamp 2>&1 | tail -n 30
  fi
  local f
  for f in operator.log pageserver.log; do
    [[ -f ${E2E_WORK:-/nonexistent}/$f ]] && { echo "--- $f (last 60 lines)"; tail -n 60 "$E2E_WORK/$f"; }
  done
  for f in kubelet containerd kube-apiserver; do
    [[ -f ${PGBRANCH_K8S_DIR:-/nonexistent}/logs/$f.log ]] || continue
    echo "--- $f.log (errors)"; grep -E '^E[0-9]|level=error' "$PGBRANCH_K8S_DIR/logs/$f.log" | tail -n 20
  done
  return 0
}

e2e_teardown() {
  set +e
  if [[ ${PGBRANCH_E2E_KEEP:-0} == 1 ]]; then
    echo "kept: source $PGBRANCH_K8S_DIR/env.sh; operator pid $E2E_OP_PID, pageserver pid $E2E_PS_PID;"
    echo "      tear down: kill $E2E_OP_PID $E2E_PS_PID; PGBRANCH_K8S_DIR=$PGBRANCH_K8S_DIR $E2E_CLUSTER down"
    return 0
  fi
  e2e_stop_pid "$E2E_OP_PID"
  if [[ -n ${PGBRANCH_K8S_DIR:-} && -d $PGBRANCH_K8S_DIR ]]; then
    bash "$E2E_CLUSTER" down >/dev/null 2>&1
  fi
  e2e_stop_pid "$E2E_PS_PID"
  rm -f "${PGBRANCH_K8S_DIR:-/nonexistent}.lock"
  [[ -n ${E2E_WORK:-} ]] && rm -rf "$E2E_WORK"
  return 0
}

# ---- objects and queries ---------------------------------------------------------------------

# apply_branch NAME [PARENT]
apply_branch() {
  local parent=""
  [[ -n ${2:-} ]] && parent="parent: $2, "
  k apply -f - >/dev/null <<EOF
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: $1}
spec: {${parent}noExpiry: true}
EOF
}

# apply_endpoint NAME BRANCH SUSPEND_TIMEOUT [TYPE]
apply_endpoint() {
  k apply -f - >/dev/null <<EOF
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: $1}
spec: {branch: $2, type: ${4:-ReadWrite}, suspendTimeout: $3}
EOF
}

ep_phase() { kubectl get endpoints.pgbranch.io "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
ep_pods() { kubectl get pods -l "pgbranch.io/endpoint=$1" -o name 2>/dev/null; }
# ep_is PHASE NAME: the endpoint has that phase
ep_is() { local p; p=$(ep_phase "$2"); [[ $p == "$1" ]] || { echo "phase '$p'"; return 1; }; }
# ep_suspended NAME: phase Suspended and zero pods
ep_suspended() {
  local p pods
  p=$(ep_phase "$1"); pods=$(ep_pods "$1")
  [[ $p == Suspended && -z $pods ]] || { echo "phase '$p', pods: ${pods:-none}"; return 1; }
}
# ep_uri NAME: the connection URI from the credentials Secret
ep_uri() { kubectl get secret "$1-credentials" -o jsonpath='{.data.uri}' | base64 -d; }

# q URI SQL: one query through the proxy (generous connect timeout: a wake can take a while)
q() { PGCONNECT_TIMEOUT=180 timeout 240 psql "$1" -X -v ON_ERROR_STOP=1 -Atqc "$2"; }
