#!/usr/bin/env bash
# The tier-3 test cluster on loopback: etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler (and, with --node, a real node through scripts/k8s/node.sh; with --services,
# kube-proxy and CoreDNS through scripts/k8s/services.sh).
#
#   cluster.sh up [--node] [--services]   start everything (idempotent: "already up" if it runs)
#   cluster.sh down               stop everything by recorded PID and remove the state dir
#   cluster.sh status             what runs (exit 1 if something is not running)
#   cluster.sh env                print the exports of $DIR/env.sh (eval "$(cluster.sh env)")
#   cluster.sh pv NAME SIZE [UID] a static hostPath PersistentVolume NAME (storageClassName
#                                 pgbranch-test, Retain) on $DIR/pv/NAME owned by UID (10001)
#   cluster.sh established CRD... wait (60 s at most) until the CRDs (crd/NAME) are Established
#   cluster.sh restart-apiserver [--down-for SECONDS]
#   cluster.sh stop-apiserver | start-apiserver
#
# --services (implies --node; root): Services and DNS that work like a real cluster's. The pod
# bridge is created first and the API server serves on its gateway address (not on 127.0.0.1:
# one --bind-address only), advertised as the `kubernetes` Service's endpoint (10.96.0.1:443);
# kube-proxy (nftables) and CoreDNS (cluster.local, on GATEWAY:53) run as host processes, and the
# kubelet points pods at that DNS. Only one such cluster per machine (kube-proxy's netfilter
# tables have fixed names): a second `up --services` refuses while the first one's kube-proxy runs.
# Plain `up` and `up --node` are unchanged (API server on 127.0.0.1, no kube-proxy, no DNS).
#
# Environment:
#   PGBRANCH_K8S_DIR   state dir (default /tmp/pgbranch-k8s)
#   PGBRANCH_K8S_PORT  API server port (default 6443) on 127.0.0.1, or on the gateway (--services)
#   PGBRANCH_K8S_BIN   use this bin dir as is instead of running build-k8s.sh
#   PGBRANCH_K8S_APISERVER_FLAGS  extra kube-apiserver flags (word-split)
#   PGBRANCH_POD_SUBNET, PGBRANCH_POD_GATEWAY, PGBRANCH_CNI_BRIDGE: the node's pod network
#     (defaults as in node.sh: 10.244.0.0/24, 10.244.0.1, pgbcni0)
#
# State dir layout (the contract for node.sh, tests and the operator's tier-3 tests):
#   kubeconfig              admin (system:masters), certificates embedded
#   env.sh                  exports KUBECONFIG, PATH, PGBRANCH_K8S_{DIR,BIN,SERVER}; with
#                           --services also PGBRANCH_K8S_SERVICES=1, PGBRANCH_CLUSTER_DNS (the
#                           DNS server = gateway), PGBRANCH_CLUSTER_DOMAIN, PGBRANCH_SERVICE_CIDR
#   cluster.env             ports, bin dir (shell variables)
#   pki/ca.{crt,key}        cluster CA (signs every certificate below)
#   pki/apiserver.{crt,key} serving cert: 127.0.0.1, localhost, 10.96.0.1, kubernetes.default…
#                           (and the gateway address with --services)
#   pv/NAME                 hostPath directories of `cluster.sh pv`
#   pki/admin.{crt,key}     CN=admin, O=system:masters
#   pki/sa.{key,pub}        service-account signing key pair
#   pki/apiserver-kubelet-client.{crt,key}  the API server's client cert towards kubelets
#   pki/node.{crt,key}      CN=system:node:localhost, O=system:nodes (kubelet → API server)
#   pki/kubelet-serving.{crt,key}  kubelet serving cert for localhost/127.0.0.1
#   logs/<component>.log, run/<component>.pid
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${PGBRANCH_K8S_DIR:-/tmp/pgbranch-k8s}
PORT=${PGBRANCH_K8S_PORT:-6443}
PKI=$DIR/pki
LOGS=$DIR/logs
RUN=$DIR/run
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler)
SA_ISSUER=https://kubernetes.default.svc.cluster.local
SERVICE_CIDR=10.96.0.0/16
# --services: the pod network (node.sh's defaults) and the address the API server serves on
net_defaults() {
  SERVICES=0
  API_HOST=127.0.0.1
  SUBNET=${PGBRANCH_POD_SUBNET:-10.244.0.0/24}
  GATEWAY=${PGBRANCH_POD_GATEWAY:-10.244.0.1}
  BRIDGE=${PGBRANCH_CNI_BRIDGE:-pgbcni0}
}
net_defaults

log() { echo "cluster: $*" >&2; }
now_ms() { date +%s%3N; }
since() { echo "$(( ($(now_ms) - $1) ))ms"; }

free_port() { python3 "$HERE/../free-port.py"; }

# port_busy PORT [HOST]: something holds HOST:PORT (default 127.0.0.1).
port_busy() {
  python3 - "$1" "${2:-127.0.0.1}" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind((sys.argv[2], int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

# ---- processes ------------------------------------------------------------------------------

# alive PID: the process exists and is not a zombie.
alive() {
  local pid=$1 stat
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }

# running NAME: its recorded PID is alive and still runs that program.
running() {
  local pid
  pid=$(pid_of "$1")
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1"
}

# start NAME CMD...: a daemon in its own session, PID recorded, output in logs/NAME.log.
start() {
  local name=$1
  shift
  printf '%q ' "$@" >"$RUN/$name.cmd"
  rm -f "$RUN/$name.pid"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
    >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $RUN/$name.pid ]] && return 0
    sleep 0.01
  done
  log "$name: no PID recorded"
  return 1
}

# stop NAME [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL.
stop() {
  local name=$1 grace=${2:-10} pid i
  pid=$(pid_of "$name")
  if running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then
      log "$name (pid $pid) did not stop in ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.05
      done
    fi
  fi
  rm -f "$RUN/$name.pid"
}

tail_logs() {
  local name
  for name in "$@"; do
    [[ -f $LOGS/$name.log ]] || continue
    echo "----- last lines of $LOGS/$name.log -----" >&2
    tail -n 40 "$LOGS/$name.log" >&2
  done
}

fail() {
  log "FAILED: $*"
  tail_logs "${COMPONENTS[@]}"
  local c
  for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c" 5; done
  log "daemons stopped; logs kept in $LOGS (cluster.sh down removes them)"
  exit 1
}

# ---- certificates ---------------------------------------------------------------------------

# cert NAME SUBJECT EXTKEYUSAGE [SAN]: an EC P-256 key and a certificate signed by the CA.
cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -z $san ]] || echo "subjectAltName=$san"
  } >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=pgbranch-test-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/ca.crt" 2>/dev/null
  local extra_ip=""
  [[ $API_HOST == 127.0.0.1 ]] || extra_ip="IP:$API_HOST,"
  cert apiserver "/CN=kube-apiserver" serverAuth \
    "${extra_ip}IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=admin" clientAuth
  # system:masters and no --use-service-account-credentials: with per-controller service-account
  # credentials kube-controller-manager exits (fatal) when the API server restarts under it.
  cert kube-controller-manager "/O=system:masters/CN=system:kube-controller-manager" clientAuth
  cert kube-scheduler "/CN=system:kube-scheduler" clientAuth
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert node "/O=system:nodes/CN=system:node:localhost" clientAuth
  cert kubelet-serving "/O=system:nodes/CN=system:node:localhost" serverAuth \
    "IP:127.0.0.1,DNS:localhost"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  chmod 600 "$PKI"/*.key
}

# kubeconfig FILE USER CERTNAME: certificates embedded, so the file can be copied anywhere.
kubeconfig() {
  local file=$1 user=$2 c=$3
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pgbranch
  cluster:
    server: https://$API_HOST:$PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$c.crt")
    client-key-data: $(base64 -w0 "$PKI/$c.key")
contexts:
- name: $user@pgbranch
  context: {cluster: pgbranch, user: $user, namespace: default}
current-context: $user@pgbranch
EOF
  chmod 600 "$file"
}

# ---- components -----------------------------------------------------------------------------

load_conf() {
  [[ -f $DIR/cluster.env ]] || return 1
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
}

curl_api() {
  curl -sS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$API_HOST:$PORT$1"
}

# Memory-backed etcd dirs whose cluster went away without `down` (killed CI run): remove them.
sweep_shm() {
  local d owner
  for d in /dev/shm/pgbranch-etcd.*; do
    [[ -f $d/.owner ]] || continue
    owner=$(cat "$d/.owner")
    [[ $(readlink "$owner/etcd" 2>/dev/null) == "$d" ]] || rm -rf "$d"
  done
}

start_etcd() {
  local data=$DIR/etcd extra=()
  if "$BIN_ETCD" --help 2>&1 | grep -q -- --unsafe-no-fsync; then
    extra+=(--unsafe-no-fsync)
  elif [[ ${PGBRANCH_K8S_ETCD_TMPFS:-1} == 1 && -d /dev/shm && -w /dev/shm ]]; then
    # No --unsafe-no-fsync (etcd 3.4): keep the data in memory instead, so fsync costs nothing.
    if [[ ! -L $data ]]; then
      local shm
      shm=$(mktemp -d /dev/shm/pgbranch-etcd.XXXXXX)
      ln -s "$shm" "$data"
      echo "$DIR" >"$shm/.owner"
    fi
  fi
  mkdir -p "$data/"
  chmod 700 "$(readlink -f "$data")"
  start etcd "$BIN_ETCD" --name pgbranch --data-dir "$data/member-data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "pgbranch=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state new --logger zap --log-level warn \
    --quota-backend-bytes $((4 * 1024 * 1024 * 1024)) "${extra[@]}"
  local i
  for ((i = 0; i < 300; i++)); do
    curl -sf --max-time 1 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q true && return 0
    running etcd || fail "etcd exited"
    sleep 0.05
  done
  fail "etcd not healthy after 15s"
}

start_apiserver() {
  mkdir -p "$RUN/kube-apiserver-certs"
  # on loopback no endpoint can be advertised (pods cannot reach it); on the gateway (--services)
  # the lease reconciler keeps the `kubernetes` Endpoints/EndpointSlice at GATEWAY:PORT
  local reconciler=none
  [[ $API_HOST == 127.0.0.1 ]] || reconciler=lease
  # shellcheck disable=SC2086
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$API_HOST" --advertise-address "$API_HOST" --secure-port "$PORT" \
    --cert-dir "$RUN/kube-apiserver-certs" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --service-account-issuer "$SA_ISSUER" \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --endpoint-reconciler-type "$reconciler" \
    --shutdown-watch-termination-grace-period 2s \
    --feature-gates WatchList=true \
    --profiling=false \
    ${PGBRANCH_K8S_APISERVER_FLAGS:-}
  wait_readyz
}

wait_readyz() {
  local i out
  for ((i = 0; i < 1200; i++)); do
    out=$(curl_api /readyz 2>/dev/null || true)
    [[ $out == ok ]] && return 0
    running kube-apiserver || fail "kube-apiserver exited"
    sleep 0.05
  done
  curl_api '/readyz?verbose' >&2 || true
  fail "kube-apiserver not ready after 60s"
}

# wait_healthz NAME PORT: the component's own /healthz (self-signed serving cert).
wait_healthz() {
  local name=$1 port=$2 i
  for ((i = 0; i < 600; i++)); do
    [[ $(curl -sk --max-time 1 "https://127.0.0.1:$port/healthz" 2>/dev/null) == ok ]] && return 0
    running "$name" || fail "$name exited"
    sleep 0.05
  done
  fail "$name not healthy after 30s"
}

start_controller_manager() {
  mkdir -p "$RUN/kube-controller-manager-certs"
  local kc=$DIR/kube-controller-manager.kubeconfig
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$CM_PORT" \
    --cert-dir "$RUN/kube-controller-manager-certs" \
    --controllers='*' --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --cluster-name pgbranch --profiling=false
}

start_scheduler() {
  mkdir -p "$RUN/kube-scheduler-certs"
  local kc=$DIR/kube-scheduler.kubeconfig
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" \
    --cert-dir "$RUN/kube-scheduler-certs" --leader-elect=false --profiling=false
}

find_bin() {
  if [[ -n ${PGBRANCH_K8S_BIN:-} ]]; then
    BIN=$PGBRANCH_K8S_BIN
  else
    local out
    out=$(bash "$HERE/build-k8s.sh") || { log "build-k8s.sh failed"; exit 1; }
    BIN=$(tail -n1 <<<"$out")
  fi
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [[ -x $BIN/$b ]] || { log "missing $BIN/$b"; exit 1; }
  done
  BIN_ETCD=$(command -v etcd || true)
  [[ -n $BIN_ETCD ]] || { log "etcd not found: apt-get install etcd-server (scripts/install-deps.sh)"; exit 1; }
}

# ---- commands -------------------------------------------------------------------------------

# The pod bridge with the gateway address, before the API server binds to it (node.sh adopts it).
make_bridge() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  grep -q "inet $GATEWAY/" <<<"$(ip -4 addr show dev "$BRIDGE")" || ip addr add "$GATEWAY/${SUBNET#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

cmd_up() {
  local with_node=0 want_services=0
  for a in "$@"; do
    case $a in
      --node) with_node=1 ;;
      --services) want_services=1 with_node=1 ;;
      *) log "unknown option $a"; exit 2 ;;
    esac
  done
  local t0 t
  t0=$(now_ms)
  if ((want_services)); then
    [[ $(id -u) == 0 ]] || { log "--services needs root (bridge, netfilter, port 53)"; exit 1; }
  fi
  if load_conf && running kube-apiserver && [[ $(curl_api /readyz 2>/dev/null) == ok ]]; then
    log "already up ($DIR, https://$API_HOST:$PORT)"
    if ((want_services && SERVICES != 1)); then
      log "the cluster in $DIR runs without Services: 'cluster.sh down' first, then 'up --node --services'"
      exit 1
    fi
    if ((SERVICES)); then bash "$HERE/services.sh" claim || exit 1; fi
  else
    if [[ -e $DIR ]]; then
      (cmd_down) >/dev/null 2>&1 || { log "$DIR exists and is not a cluster state dir"; exit 1; }
    fi
    net_defaults # load_conf above may have read a stale cluster.env
    SERVICES=$want_services
    if ((SERVICES)); then
      API_HOST=$GATEWAY
      if ip -4 addr show | grep -q "inet $GATEWAY/" && port_busy "$PORT" "$GATEWAY"; then
        log "port $GATEWAY:$PORT is in use: set PGBRANCH_K8S_PORT to a free port"
        exit 1
      fi
    fi
    if port_busy "$PORT"; then
      log "port 127.0.0.1:$PORT is in use: set PGBRANCH_K8S_PORT to a free port"
      exit 1
    fi
    # the machine's Services, before anything starts: a second cluster refuses at once
    if ((SERVICES)); then bash "$HERE/services.sh" claim || exit 1; fi
    t=$(now_ms)
    find_bin
    log "binaries: $BIN ($(since "$t"))"
    mkdir -p "$DIR" "$LOGS" "$RUN"
    t=$(now_ms)
    make_pki
    kubeconfig "$DIR/kubeconfig" admin admin
    kubeconfig "$DIR/kube-controller-manager.kubeconfig" kube-controller-manager kube-controller-manager
    kubeconfig "$DIR/kube-scheduler.kubeconfig" kube-scheduler kube-scheduler
    log "certificates and kubeconfigs ($(since "$t"))"
    ETCD_PORT=$(free_port)
    ETCD_PEER_PORT=$(free_port)
    while [[ $ETCD_PEER_PORT == "$ETCD_PORT" ]]; do ETCD_PEER_PORT=$(free_port); done
    CM_PORT=$(free_port)
    SCHED_PORT=$(free_port)
    cat >"$DIR/cluster.env" <<EOF
PORT=$PORT
BIN=$BIN
BIN_ETCD=$BIN_ETCD
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
CM_PORT=$CM_PORT
SCHED_PORT=$SCHED_PORT
SERVICES=$SERVICES
API_HOST=$API_HOST
EOF
    cat >"$DIR/env.sh" <<EOF
export PGBRANCH_K8S_DIR=$DIR
export PGBRANCH_K8S_BIN=$BIN
export PGBRANCH_K8S_SERVER=https://$API_HOST:$PORT
export KUBECONFIG=$DIR/kubeconfig
export PATH=$BIN:\$PATH
EOF
    if ((SERVICES)); then
      cat >>"$DIR/cluster.env" <<EOF
SUBNET=$SUBNET
GATEWAY=$GATEWAY
BRIDGE=$BRIDGE
EOF
      # node.sh reads the PGBRANCH_POD_* and PGBRANCH_CLUSTER_DNS (kubelet clusterDNS) from here
      cat >>"$DIR/env.sh" <<EOF
export PGBRANCH_K8S_SERVICES=1
export PGBRANCH_POD_SUBNET=$SUBNET
export PGBRANCH_POD_GATEWAY=$GATEWAY
export PGBRANCH_CNI_BRIDGE=$BRIDGE
export PGBRANCH_CLUSTER_DNS=$GATEWAY
export PGBRANCH_CLUSTER_DOMAIN=cluster.local
export PGBRANCH_SERVICE_CIDR=$SERVICE_CIDR
EOF
      make_bridge || fail "bridge $BRIDGE ($GATEWAY)"
    fi
    sweep_shm
    t=$(now_ms)
    start_etcd
    log "etcd healthy on 127.0.0.1:$ETCD_PORT ($(since "$t"))"
    t=$(now_ms)
    start_apiserver
    log "kube-apiserver ready on https://$API_HOST:$PORT ($(since "$t"))"
    t=$(now_ms)
    start_controller_manager
    start_scheduler
    wait_healthz kube-controller-manager "$CM_PORT"
    wait_healthz kube-scheduler "$SCHED_PORT"
    log "kube-controller-manager and kube-scheduler healthy ($(since "$t"))"
    log "control plane up in $(since "$t0"): source $DIR/env.sh"
  fi
  if ((with_node)); then
    [[ -f $HERE/node.sh ]] || { log "--node: $HERE/node.sh does not exist"; exit 1; }
    t=$(now_ms)
    # shellcheck disable=SC1091
    (source "$DIR/env.sh" && bash "$HERE/node.sh" up) || { log "node.sh up failed"; exit 1; }
    log "node up ($(since "$t"))"
  fi
  if ((SERVICES)); then
    t=$(now_ms)
    bash "$HERE/services.sh" up || { log "services.sh up failed (cluster.sh down cleans up)"; exit 1; }
    log "kube-proxy and CoreDNS up ($(since "$t")); all up in $(since "$t0")"
  fi
}

cmd_down() {
  if [[ ! -d $DIR ]]; then
    log "nothing to stop ($DIR does not exist)"
    return 0
  fi
  if [[ ! -f $DIR/cluster.env && -n $(ls -A "$DIR" 2>/dev/null) && ! -d $DIR/pki ]]; then
    log "$DIR is not a cluster state dir (no cluster.env, pki): not removing it"
    return 1
  fi
  load_conf || true
  if [[ $SERVICES == 1 || -d $DIR/services ]]; then
    bash "$HERE/services.sh" down || log "services.sh down failed (continuing)"
  fi
  if [[ -f $HERE/node.sh && -f $DIR/env.sh ]]; then
    # shellcheck disable=SC1091
    (source "$DIR/env.sh" && bash "$HERE/node.sh" down) || log "node.sh down failed (continuing)"
  fi
  local c
  for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c" 15; done
  # the bridge made before the API server, when node.sh did not get to own (and delete) it
  if [[ $SERVICES == 1 ]] && ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link delete "$BRIDGE" 2>/dev/null || true
  fi
  local shm
  shm=$(readlink "$DIR/etcd" 2>/dev/null || true)
  [[ $shm != /dev/shm/pgbranch-etcd.* ]] || rm -rf "$shm"
  rm -rf "$DIR"
  log "down ($DIR removed)"
}

cmd_status() {
  if ! load_conf; then
    echo "not up ($DIR/cluster.env missing)"
    return 1
  fi
  local c rc=0
  local -A ports=([etcd]="127.0.0.1:$ETCD_PORT" [kube-apiserver]="$API_HOST:$PORT" [kube-controller-manager]="127.0.0.1:$CM_PORT" [kube-scheduler]="127.0.0.1:$SCHED_PORT")
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then
      printf '%-24s running  pid %-8s %s\n' "$c" "$(pid_of "$c")" "${ports[$c]}"
    else
      printf '%-24s STOPPED\n' "$c"
      rc=1
    fi
  done
  printf '%-24s %s\n' "readyz" "$(curl_api /readyz 2>/dev/null || echo unreachable)"
  echo "state dir: $DIR   kubeconfig: $DIR/kubeconfig   env: source $DIR/env.sh"
  if [[ -f $HERE/node.sh ]] && grep -q 'status' "$HERE/node.sh"; then
    # shellcheck disable=SC1091
    (source "$DIR/env.sh" && bash "$HERE/node.sh" status) || true
  fi
  if [[ $SERVICES == 1 ]]; then
    bash "$HERE/services.sh" status || rc=1
  fi
  return $rc
}

# pv NAME SIZE [UID]: a static hostPath PersistentVolume for a PVC of storageClassName
# pgbranch-test (no provisioner runs here); the directory is owned by UID so a non-root pod can
# write it, and goes away with the state dir on `down`.
cmd_pv() {
  local name=${1:-} size=${2:-} uid=${3:-10001}
  if [[ -z $name || -z $size ]]; then
    log "usage: cluster.sh pv NAME SIZE [UID]   (e.g. cluster.sh pv data-pageserver-0 1Gi)"
    exit 2
  fi
  [[ $name =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || { log "pv: '$name' is not a valid object name (lower case, digits, '-', '.')"; exit 2; }
  [[ $size =~ ^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$ ]] || { log "pv: size '$size' is not a quantity like 1Gi or 500Mi"; exit 2; }
  [[ $uid =~ ^[0-9]+$ ]] || { log "pv: UID '$uid' is not a number"; exit 2; }
  load_conf || { log "not up ($DIR/cluster.env missing): cluster.sh up first"; exit 1; }
  local kubectl=("$BIN/kubectl" --kubeconfig "$DIR/kubeconfig")
  local path=$DIR/pv/$name
  mkdir -p "$path"
  chown "$uid:$uid" "$path"
  chmod 0770 "$path"
  "${kubectl[@]}" apply -f - >/dev/null <<EOF || { rm -rf "$path"; log "pv: kubectl apply failed"; exit 1; }
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: pgbranch-test}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $name
  labels: {pgbranch.io/test-pv: "$name"}
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: pgbranch-test
  volumeMode: Filesystem
  hostPath: {path: $path, type: Directory}
EOF
  log "pv $name ($size, storageClassName pgbranch-test) on $path (owner $uid)"
}

# established CRD...: until each is Established, 60 s at most. Right after a CRD is created it
# has no conditions yet, and `kubectl wait --for condition=Established` then fails at once
# (".status.conditions accessor error: <nil>") instead of waiting: ask again until it answers.
cmd_established() {
  (($#)) || { log "usage: cluster.sh established CRD...   (e.g. cluster.sh established crd/branches.pgbranch.io)"; exit 2; }
  load_conf || { log "not up ($DIR/cluster.env missing): cluster.sh up first"; exit 1; }
  local kubectl=("$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" --request-timeout=30s)
  local out deadline=$((SECONDS + 60))
  until out=$("${kubectl[@]}" wait --for condition=Established --timeout=5s "$@" 2>&1); do
    if ((SECONDS >= deadline)); then
      log "not Established after 60 s: $out"
      exit 1
    fi
    sleep 0.5
  done
}

cmd_env() {
  [[ -f $DIR/env.sh ]] || { log "not up ($DIR/env.sh missing)"; exit 1; }
  cat "$DIR/env.sh"
}

cmd_stop_apiserver() {
  load_conf || { log "not up"; exit 1; }
  stop kube-apiserver 30
  log "kube-apiserver stopped"
}

cmd_start_apiserver() {
  load_conf || { log "not up"; exit 1; }
  if running kube-apiserver; then
    log "kube-apiserver already running"
    return 0
  fi
  local t
  t=$(now_ms)
  start_apiserver
  log "kube-apiserver ready again ($(since "$t"))"
}

cmd_restart_apiserver() {
  local down_for=0
  while (($#)); do
    case $1 in
      --down-for) down_for=$2; shift 2 ;;
      *) log "unknown option $1"; exit 2 ;;
    esac
  done
  cmd_stop_apiserver
  [[ $down_for == 0 ]] || sleep "$down_for"
  cmd_start_apiserver
}

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  local cmd=${1:-}
  shift || true
  mkdir -p "$(dirname "$DIR")"
  case $cmd in
    up | down | restart-apiserver | stop-apiserver | start-apiserver)
      # One command at a time per state dir.
      exec 9>"$DIR.lock"
      flock -w 120 9 || log "lock $DIR.lock still held after 120s: going on anyway"
      ;;
  esac
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    pv) cmd_pv "$@" ;;
    established) cmd_established "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    stop-apiserver) cmd_stop_apiserver ;;
    start-apiserver) cmd_start_apiserver ;;
    *) usage ;;
  esac
}

main "$@"
