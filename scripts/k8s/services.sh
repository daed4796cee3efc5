#!/usr/bin/env bash
# Services and cluster DNS for the tier-3 test cluster, as host processes next to the kubelet:
# kube-proxy (nftables mode; iptables mode when nft is missing) and a slim CoreDNS (kubernetes
# plugin, zone cluster.local, on the pod gateway :53). Called by `cluster.sh up --services` once
# the node is Ready, and by `cluster.sh down`; `check` is the machine-wide guard.
#
#   services.sh check    exit 1 (with the reason) when another cluster has the machine's Services
#   services.sh claim    check, then claim the machine for $PGBRANCH_K8S_DIR (cluster.sh up does
#                        this before it starts anything, so a second cluster refuses at once)
#   services.sh up       claim the machine, start CoreDNS and kube-proxy, wait until both serve
#   services.sh down     stop both, delete every netfilter table/chain kube-proxy made, release
#   services.sh status   what runs (exit 1 if something is not running)
#
# Invariants:
#   - kube-proxy's netfilter state has fixed names (table `ip kube-proxy`, chains KUBE-*), so one
#     cluster per machine has Services: the claim is $OWNER (holding the state dir), taken and
#     checked under flock $OWNER.lock. A claim is live while its cluster's etcd, kube-apiserver,
#     kube-proxy or CoreDNS runs, or for $CLAIM_GRACE s after it was taken (starting up); else
#     stale, and the next cluster takes it over.
#   - Service traffic never leaves the machine: 10.96.0.0/16 is routed into the pod bridge (src =
#     gateway), CoreDNS answers only cluster.local and reverse zones and NXDOMAIN for the rest (no
#     upstream), kube-proxy masquerades all Service traffic (pod -> Service -> pod on the same
#     bridge and hairpin work whatever bridge-nf-call-iptables says) and serves NodePorts only
#     on the gateway.
# Reads $DIR/cluster.env (BIN, PORT, API_HOST, SUBNET, GATEWAY, BRIDGE) and $DIR/pki/ca.*.
# Files: $DIR/services/{settings,kube-proxy.yaml,Corefile,*.kubeconfig,pki/},
#   logs $DIR/logs/{kube-proxy,coredns}.log, pids $DIR/run/{kube-proxy,coredns}.pid.
# Environment: PGBRANCH_KUBE_PROXY_MODE (nftables | iptables; default nftables when `nft` exists).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${PGBRANCH_K8S_DIR:-/tmp/pgbranch-k8s}
SVC=$DIR/services
LOGS=$DIR/logs
RUN=$DIR/run
OWNER=/tmp/pgbranch-k8s-services.owner
CLAIM_GRACE=120
SERVICE_CIDR=10.96.0.0/16
DOMAIN=cluster.local

log() { echo "services: $*" >&2; }
now_ms() { date +%s%3N; }
since() { echo "$(($(now_ms) - $1))ms"; }
free_port() { python3 "$HERE/../free-port.py"; }

# ---- processes (same conventions as cluster.sh and node.sh) ---------------------------------
alive() {
  local pid=$1 stat
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}
pid_of() { cat "${2:-$RUN}/$1.pid" 2>/dev/null || true; }
# running NAME [RUNDIR [PATTERN]]: the recorded PID is alive and its command line names a file
# of that state dir (PATTERN, default <state dir>/services/)
running() {
  local pid run=${2:-$RUN}
  pid=$(pid_of "$1" "$run")
  alive "$pid" || return 1
  grep -qF -- "${3:-${run%/run}/services/}" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
}
start() { # NAME CMD...
  local name=$1
  shift
  printf '%q ' "$@" >"$RUN/$name.cmd"
  rm -f "$RUN/$name.pid"
  setsid bash -c 'echo $$ >"$0"
    for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"; done
    exec "$@"' "$RUN/$name.pid" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $RUN/$name.pid ]] && return 0
    sleep 0.01
  done
  log "$name: no PID recorded"
  return 1
}
stop() { # NAME GRACE_SECONDS
  local name=$1 grace=$2 pid i
  pid=$(pid_of "$name")
  if running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
  fi
  rm -f "$RUN/$name.pid"
}

fail() {
  log "FAILED: $*"
  local n
  for n in kube-proxy coredns; do
    [[ -f $LOGS/$n.log ]] || continue
    echo "----- last lines of $LOGS/$n.log -----" >&2
    tail -n 30 "$LOGS/$n.log" >&2
  done
  exit 1
}

load() {
  [[ -f $DIR/cluster.env ]] || { log "no cluster in $DIR (cluster.env missing)"; exit 1; }
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
  [[ ${SERVICES:-0} == 1 ]] || { log "$DIR was not started with --services"; exit 1; }
  KUBECTL=("$BIN/kubectl" --kubeconfig "$DIR/kubeconfig")
}

# ---- the machine-wide claim ------------------------------------------------------------------
# owner_busy: prints the other state dir whose claim is live (see the header); 1 if none
owner_busy() {
  local other age
  other=$(cat "$OWNER" 2>/dev/null || true)
  [[ -n $other && $other != "$DIR" ]] || return 1
  age=$(($(date +%s) - $(stat -c %Y "$OWNER" 2>/dev/null || echo 0)))
  if running kube-proxy "$other/run" || running coredns "$other/run" ||
    running kube-apiserver "$other/run" "$other/" || running etcd "$other/run" "$other/" ||
    ((age < CLAIM_GRACE)); then
    echo "$other"
    return 0
  fi
  return 1
}

cmd_check() {
  local other
  if other=$(owner_busy); then
    log "another test cluster with Services runs on this machine (state dir $other): only one can"
    log "(kube-proxy's netfilter tables are machine-wide). Stop it first: PGBRANCH_K8S_DIR=$other scripts/k8s/cluster.sh down"
    return 1
  fi
  return 0
}

claim() {
  exec 8>"$OWNER.lock"
  flock -w 60 8 || fail "lock $OWNER.lock held for 60s"
  cmd_check || exit 1
  if [[ $(cat "$OWNER" 2>/dev/null || true) != "$DIR" ]]; then
    echo "$DIR" >"$OWNER.tmp"
    mv "$OWNER.tmp" "$OWNER"
  fi
  exec 8>&-
}

release() {
  [[ $(cat "$OWNER" 2>/dev/null || true) == "$DIR" ]] && rm -f "$OWNER"
  return 0
}

# ---- certificates and kubeconfigs ------------------------------------------------------------
svc_cert() { # NAME SUBJECT
  local p=$SVC/pki
  openssl ecparam -name prime256v1 -genkey -noout -out "$p/$1.key" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$p/$1.ext"
  openssl req -new -key "$p/$1.key" -subj "$2" -out "$p/$1.csr" 2>/dev/null
  openssl x509 -req -in "$p/$1.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -CAserial "$p/ca.srl" -days 3650 -sha256 -extfile "$p/$1.ext" \
    -out "$p/$1.crt" 2>/dev/null
  rm -f "$p/$1.csr" "$p/$1.ext"
  chmod 600 "$p/$1.key"
  cat >"$SVC/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pgbranch
  cluster:
    server: https://$API_HOST:$PORT
    certificate-authority: $DIR/pki/ca.crt
users:
- name: $1
  user:
    client-certificate: $p/$1.crt
    client-key: $p/$1.key
contexts:
- name: $1
  context: {cluster: pgbranch, user: $1}
current-context: $1
EOF
  chmod 600 "$SVC/$1.kubeconfig"
}

# ---- CoreDNS -----------------------------------------------------------------------------------
coredns_rbac() {
  "${KUBECTL[@]}" apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}
EOF
}

# Zones cluster.local and the reverse zones from the API server; everything else NXDOMAIN at
# once (no upstream: this machine has no network beyond the package registries). No cache: the
# kubernetes plugin answers from its informers' memory, and a Service is resolvable as soon as
# CoreDNS has seen it (a cached NXDOMAIN would hide it for seconds).
write_corefile() {
  cat >"$SVC/Corefile" <<EOF
$DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $GATEWAY
    errors
    ready 127.0.0.1:$DNS_READY_PORT
    kubernetes $DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $SVC/coredns.kubeconfig coredns
        pods insecure
        ttl 5
    }
    loadbalance
}
.:53 {
    bind $GATEWAY
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
}

start_coredns() {
  start coredns "$BIN/coredns" -conf "$SVC/Corefile"
  local i
  for ((i = 0; i < 600; i++)); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$DNS_READY_PORT/ready" 2>/dev/null) == 200 ]] && return 0
    running coredns || fail "coredns exited"
    sleep 0.05
  done
  fail "coredns not ready after 30s"
}

# ---- kube-proxy --------------------------------------------------------------------------------
write_kube_proxy_config() {
  # conntrack limits/timeouts 0: kube-proxy leaves the machine's sysctls alone;
  # localhostNodePorts false: no route_localnet (iptables mode)
  cat >"$SVC/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $SVC/kube-proxy.kubeconfig
hostnameOverride: localhost
mode: $KP_MODE
clusterCIDR: $SUBNET
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$GATEWAY/32"]
healthzBindAddress: 127.0.0.1:$KP_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KP_METRICS_PORT
oomScoreAdj: 0
nftables: {masqueradeAll: true, syncPeriod: 30s, minSyncPeriod: 0s}
iptables: {masqueradeAll: true, localhostNodePorts: false, syncPeriod: 30s, minSyncPeriod: 0s}
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
EOF
}

start_kube_proxy() {
  start kube-proxy "$BIN/kube-proxy" --config "$SVC/kube-proxy.yaml" --v=1
  local i
  for ((i = 0; i < 600; i++)); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$KP_HEALTHZ_PORT/healthz" 2>/dev/null) == 200 ]] &&
      kube_proxy_rules_present; then
      return 0
    fi
    running kube-proxy || fail "kube-proxy exited"
    sleep 0.05
  done
  fail "kube-proxy not healthy after 30s"
}

# kube_proxy_rules_present: the `kubernetes` Service (10.96.0.1) is programmed
kube_proxy_rules_present() {
  if [[ $KP_MODE == nftables ]]; then
    nft list table ip kube-proxy 2>/dev/null | grep -q '10\.96\.0\.1 '
  else
    iptables-save -t nat 2>/dev/null | grep -q -- '-d 10\.96\.0\.1/32'
  fi
}

# Every netfilter object kube-proxy made: its nftables tables (both families; nothing else
# lives in them), or in iptables mode kube-proxy's own cleanup of its KUBE-* chains.
clean_netfilter() {
  local fam
  if command -v nft >/dev/null; then
    for fam in ip ip6; do
      nft list table "$fam" kube-proxy >/dev/null 2>&1 && nft delete table "$fam" kube-proxy
    done
  fi
  if [[ ${KP_MODE:-} == iptables ]] || iptables-save 2>/dev/null | grep -q '^:KUBE-SERVICES '; then
    "$BIN/kube-proxy" --cleanup >>"$LOGS/kube-proxy.log" 2>&1 || log "kube-proxy --cleanup reported errors (see $LOGS/kube-proxy.log)"
    # --cleanup keeps its canary chains and KUBE-MARK-MASQ (nothing jumps to them any more);
    # the kubelet's own chains (KUBE-KUBELET-CANARY, KUBE-FIREWALL, KUBE-IPTABLES-HINT) stay
    local ipt t c
    for ipt in iptables ip6tables; do
      command -v "$ipt" >/dev/null || continue
      for t in mangle nat filter; do
        for c in KUBE-PROXY-CANARY KUBE-MARK-MASQ; do
          "$ipt" -t "$t" -n -L "$c" >/dev/null 2>&1 || continue
          "$ipt" -t "$t" -F "$c" && "$ipt" -t "$t" -X "$c" || log "could not delete $ipt -t $t $c"
        done
      done
    done
  fi
  return 0
}

# ---- commands ----------------------------------------------------------------------------------
cmd_up() {
  local t0 t
  t0=$(now_ms)
  load
  local b
  for b in kube-proxy coredns; do
    [[ -x $BIN/$b ]] || { log "missing $BIN/$b: run scripts/k8s/build-k8s.sh"; exit 1; }
  done
  if running kube-proxy && running coredns; then
    log "already up (kube-proxy pid $(pid_of kube-proxy), coredns pid $(pid_of coredns))"
    return 0
  fi
  claim
  # half up (one of them died): start both afresh, with new ports
  stop kube-proxy 10
  stop coredns 5
  mkdir -p "$SVC/pki" "$LOGS" "$RUN"
  chmod 700 "$SVC/pki"
  KP_MODE=${PGBRANCH_KUBE_PROXY_MODE:-}
  if [[ -z $KP_MODE ]]; then
    KP_MODE=iptables
    command -v nft >/dev/null && KP_MODE=nftables
  fi
  [[ $KP_MODE == nftables || $KP_MODE == iptables ]] || { log "PGBRANCH_KUBE_PROXY_MODE=$KP_MODE: nftables or iptables"; exit 2; }
  if [[ $KP_MODE == nftables ]] && ! command -v nft >/dev/null; then
    log "nftables mode needs nft: apt-get install nftables (scripts/install-deps.sh)"
    exit 1
  fi
  DNS_READY_PORT=$(free_port)
  KP_HEALTHZ_PORT=$(free_port)
  KP_METRICS_PORT=$(free_port)
  cat >"$SVC/settings" <<EOF
KP_MODE=$KP_MODE
DNS_READY_PORT=$DNS_READY_PORT
KP_HEALTHZ_PORT=$KP_HEALTHZ_PORT
KP_METRICS_PORT=$KP_METRICS_PORT
EOF
  t=$(now_ms)
  svc_cert kube-proxy "/CN=system:kube-proxy" # bound to system:node-proxier by the bootstrap RBAC
  svc_cert coredns "/CN=system:coredns"
  coredns_rbac || fail "CoreDNS RBAC"
  write_corefile
  write_kube_proxy_config
  # Service addresses go into the pod bridge, never out of the machine (also for host clients)
  ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$GATEWAY"
  log "certificates, RBAC, configs, route $SERVICE_CIDR -> $BRIDGE ($(since "$t"))"
  t=$(now_ms)
  start_coredns
  log "coredns ready on $GATEWAY:53 ($(since "$t"))"
  t=$(now_ms)
  start_kube_proxy
  log "kube-proxy ($KP_MODE) synced ($(since "$t"))"
  log "up in $(since "$t0"): Services $SERVICE_CIDR, DNS $GATEWAY ($DOMAIN), NodePorts on $GATEWAY"
}

cmd_down() {
  [[ -d $DIR ]] || { log "nothing to stop ($DIR does not exist)"; return 0; }
  # shellcheck disable=SC1091
  [[ -f $DIR/cluster.env ]] && source "$DIR/cluster.env"
  # shellcheck disable=SC1091
  [[ -f $SVC/settings ]] && source "$SVC/settings"
  BIN=${BIN:-${PGBRANCH_K8S_BIN:-}}
  stop kube-proxy 10
  stop coredns 5
  # the netfilter state is the claim holder's: never clean it under another cluster's kube-proxy
  local owner
  owner=$(cat "$OWNER" 2>/dev/null || true)
  if [[ $owner == "$DIR" || (-z $owner && -f $SVC/settings) ]]; then
    clean_netfilter
  elif [[ -f $SVC/settings ]]; then
    log "kube-proxy's netfilter tables left alone: $owner holds the machine's Services now"
  fi
  [[ -z ${BRIDGE:-} ]] || ip route del "$SERVICE_CIDR" dev "$BRIDGE" 2>/dev/null || true
  release
  rm -rf "$SVC"
  log "down"
}

cmd_status() {
  load
  # shellcheck disable=SC1091
  [[ -f $SVC/settings ]] && source "$SVC/settings"
  local rc=0
  if running kube-proxy; then
    printf '%-24s running  pid %-8s mode %s, Services %s\n' kube-proxy "$(pid_of kube-proxy)" "${KP_MODE:-?}" "$SERVICE_CIDR"
  else
    printf '%-24s STOPPED\n' kube-proxy
    rc=1
  fi
  if running coredns; then
    printf '%-24s running  pid %-8s %s:53 (%s)\n' coredns "$(pid_of coredns)" "$GATEWAY" "$DOMAIN"
  else
    printf '%-24s STOPPED\n' coredns
    rc=1
  fi
  return $rc
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    check) cmd_check ;;
    claim) claim ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
