#!/usr/bin/env bash
# A real Kubernetes node for the tier-3 test cluster: containerd (Debian package, private
# config/root/state/socket) + runc + CNI bridge, and a kubelet named `localhost`.
# Called by `scripts/k8s/cluster.sh up --node` once the API server is ready, and by
# `cluster.sh down`. Can also be run by hand against a running control plane.
#
#   node.sh up       start containerd and kubelet, import the pause image, wait for Node Ready
#   node.sh down     stop kubelet, pods, containerd; unmount, delete bridge/netns (idempotent)
#   node.sh status   what runs (exit 1 if something is not running)
#   node.sh env      print the node's exports ($DIR/node-env.sh)
#
# Contract (state dir $PGBRANCH_K8S_DIR, default /tmp/pgbranch-k8s, shared with cluster.sh):
#   reads   $DIR/kubeconfig (admin), $DIR/pki/ca.{crt,key}, $DIR/env.sh (PGBRANCH_K8S_BIN)
#   containerd socket   $DIR/containerd/containerd.sock   (ctr -a SOCK -n k8s.io ...)
#   containerd dirs     $DIR/containerd/{config.toml,root,state,runc} (root may be a symlink
#                       into /dev/shm, see PGBRANCH_CONTAINERD_TMPFS)
#   kubelet             node name `localhost`, node IP = the pod gateway, port 10250,
#                       files in $DIR/node/ (config, kubeconfig, pki/, root/, pod-logs/)
#   pod network         CNI bridge `pgbcni0`, subnet 10.244.0.0/24, gateway (host side)
#                       10.244.0.1: pods reach host services listening on 10.244.0.1, the host
#                       reaches pod IPs through the bridge route. No masquerade, no kube-proxy.
#   images              sandbox image docker.io/pgbranch/pause:dev (scripts/images/build-images.sh
#                       --pause-only --import, done by `up`); the pgbranch images are imported by
#                       `scripts/images/build-images.sh --import`
#   logs, pids          $DIR/logs/{containerd,kubelet}.log, $DIR/run/{containerd,kubelet}.pid
#   $DIR/node-env.sh    exports PGBRANCH_CONTAINERD_SOCK, PGBRANCH_POD_GATEWAY, PGBRANCH_POD_SUBNET,
#                       PGBRANCH_NODE_NAME
# Environment: PGBRANCH_K8S_DIR, PGBRANCH_K8S_BIN (kubelet, kubectl; default: build-k8s.sh's
#   cache dir), PGBRANCH_POD_SUBNET (10.244.0.0/24), PGBRANCH_POD_GATEWAY (10.244.0.1),
#   PGBRANCH_CNI_BRIDGE (pgbcni0), PGBRANCH_KUBELET_PORT (10250), PGBRANCH_NODE_TIMEOUT (120 s),
#   PGBRANCH_CLUSTER_DNS (kubelet clusterDNS: set by `cluster.sh up --services` in env.sh; unset:
#   pods use the host's resolv.conf as before),
#   PGBRANCH_KUBELET_CGROUP_ROOT (/pgbranch-<hash of DIR>), PGBRANCH_CONTAINERD_TMPFS (auto: the
#   containerd root in /dev/shm when 4 GiB are free there). Two nodes at once need different
#   DIR, subnet, gateway, bridge and kubelet port.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=${PGBRANCH_K8S_DIR:-/tmp/pgbranch-k8s}
K8S_VERSION=${K8S_VERSION:-v1.33.13}
BIN=${PGBRANCH_K8S_BIN:-${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}/k8s-$K8S_VERSION/bin}
SUBNET=${PGBRANCH_POD_SUBNET:-10.244.0.0/24}
GATEWAY=${PGBRANCH_POD_GATEWAY:-10.244.0.1}
BRIDGE=${PGBRANCH_CNI_BRIDGE:-pgbcni0}
KUBELET_PORT=${PGBRANCH_KUBELET_PORT:-10250}
NODE_TIMEOUT=${PGBRANCH_NODE_TIMEOUT:-120}
NODE_NAME=localhost
CLUSTER_DNS=${PGBRANCH_CLUSTER_DNS:-}
# kubelet's cgroup root: one per state dir, so two nodes (two state dirs) never take each other's
# pod cgroups for orphans, and `down` removes exactly ours
CGROUP_ROOT=${PGBRANCH_KUBELET_CGROUP_ROOT:-/pgbranch-$(printf '%s' "$DIR" | sha256sum | cut -c1-8)}
CNI_NET=pgbranch
PAUSE_IMAGE=docker.io/pgbranch/pause:dev

CTRD=$DIR/containerd
SOCK=$CTRD/containerd.sock
NODE=$DIR/node
LOGS=$DIR/logs
RUN=$DIR/run
KUBECTL=()

log() { echo "node: $*" >&2; }
now_ms() { date +%s%3N; }
since() { echo "$(( $(now_ms) - $1 ))ms"; }

# ---- processes (same conventions as cluster.sh) -----------------------------------------------
alive() {
  local pid=$1 stat
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}
pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
running() {
  local pid
  pid=$(pid_of "$1")
  alive "$pid" || return 1
  grep -qF -- "$2" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
}
start() { # NAME CMD...
  local name=$1
  shift
  printf '%q ' "$@" >"$RUN/$name.cmd"
  rm -f "$RUN/$name.pid"
  # the daemon keeps no inherited descriptor beyond 0-2 (cluster.sh holds its lock on fd 9)
  setsid bash -c 'echo $$ >"$0"
    for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"; done
    exec "$@"' "$RUN/$name.pid" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $RUN/$name.pid ]] && return 0
    sleep 0.01
  done
  log "$name: no PID recorded"
  return 1
}
kill_pid() { # PID GRACE_SECONDS
  local pid=$1 grace=$2 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 20; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
}
stop() { # NAME PATTERN GRACE
  if running "$1" "$2"; then kill_pid "$(pid_of "$1")" "$3"; fi
  rm -f "$RUN/$1.pid"
}

fail() {
  log "FAILED: $*"
  local n
  for n in containerd kubelet; do
    [[ -f $LOGS/$n.log ]] || continue
    echo "----- last lines of $LOGS/$n.log -----" >&2
    grep -v '^I[0-9]' "$LOGS/$n.log" | tail -n 30 >&2 || true
  done
  exit 1
}

need_tools() {
  local missing=() t
  for t in containerd containerd-shim-runc-v2 runc ctr ip openssl iptables; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  for t in bridge host-local portmap loopback; do
    [[ -x /usr/lib/cni/$t ]] || missing+=("/usr/lib/cni/$t")
  done
  ((${#missing[@]} == 0)) || {
    log "missing ${missing[*]}: run scripts/install-deps.sh (containerd runc containernetworking-plugins iptables)"
    exit 1
  }
  for t in kubelet kubectl; do
    [[ -x $BIN/$t ]] || { log "missing $BIN/$t: run scripts/k8s/build-k8s.sh"; exit 1; }
  done
  [[ -f $DIR/kubeconfig && -f $DIR/pki/ca.crt && -f $DIR/pki/ca.key ]] || {
    log "no control plane in $DIR (kubeconfig, pki/ca.{crt,key}): run scripts/k8s/cluster.sh up"
    exit 1
  }
  KUBECTL=("$BIN/kubectl" --kubeconfig "$DIR/kubeconfig")
}

# ---- certificates -------------------------------------------------------------------------------
node_cert() { # NAME SUBJECT EKU [SAN]
  local name=$1 subj=$2 eku=$3 san=${4:-} p=$NODE/pki
  [[ -f $p/$name.crt && -f $p/$name.key ]] && openssl verify -CAfile "$DIR/pki/ca.crt" "$p/$name.crt" >/dev/null 2>&1 && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$p/$name.key" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -z $san ]] || echo "subjectAltName=$san"
  } >"$p/$name.ext"
  openssl req -new -key "$p/$name.key" -subj "$subj" -out "$p/$name.csr" 2>/dev/null
  openssl x509 -req -in "$p/$name.csr" -CA "$DIR/pki/ca.crt" -CAkey "$DIR/pki/ca.key" \
    -CAcreateserial -CAserial "$p/ca.srl" -days 3650 -sha256 -extfile "$p/$name.ext" \
    -out "$p/$name.crt" 2>/dev/null
  rm -f "$p/$name.csr" "$p/$name.ext"
  chmod 600 "$p/$name.key"
}

make_certs() {
  mkdir -p "$NODE/pki"
  chmod 700 "$NODE/pki"
  node_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
  node_cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth \
    "DNS:localhost,IP:127.0.0.1,IP:$GATEWAY"
  local server
  server=$(sed -n 's/^ *server: *//p' "$DIR/kubeconfig" | head -n1)
  [[ -n $server ]] || fail "no server: line in $DIR/kubeconfig"
  cat >"$NODE/kubelet.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: pgbranch
  cluster:
    server: $server
    certificate-authority: $DIR/pki/ca.crt
users:
- name: system:node:$NODE_NAME
  user:
    client-certificate: $NODE/pki/kubelet-client.crt
    client-key: $NODE/pki/kubelet-client.key
contexts:
- name: kubelet
  context: {cluster: pgbranch, user: "system:node:$NODE_NAME"}
current-context: kubelet
EOF
  chmod 600 "$NODE/kubelet.kubeconfig"
}

# ---- network ------------------------------------------------------------------------------------
prefix_len() { echo "${SUBNET#*/}"; }

# The bridge exists before any pod so host services can listen on the gateway IP at once; the
# CNI bridge plugin (isGateway) adopts it.
setup_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
  fi
  grep -q "inet $GATEWAY/" <<<"$(ip addr show dev "$BRIDGE")" || ip addr add "$GATEWAY/$(prefix_len)" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # the bridge plugin turns on IPv4 forwarding (isGateway): remember the value to restore on down
  [[ -f $NODE/ip_forward.orig ]] || cat /proc/sys/net/ipv4/ip_forward >"$NODE/ip_forward.orig"
}

write_cni() {
  mkdir -p "$NODE/cni/conf" "$NODE/cni/bin" "$NODE/cni/ipam"
  local p
  for p in bridge host-local portmap loopback; do ln -sf "/usr/lib/cni/$p" "$NODE/cni/bin/$p"; done
  cat >"$NODE/cni/conf/10-pgbranch.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE/cni/ipam",
        "ranges": [[{"subnet": "$SUBNET", "gateway": "$GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

# ---- containerd ---------------------------------------------------------------------------------
write_containerd_config() {
  # Images and container filesystems in memory (/dev/shm): image import ~2x and `down` ~10x
  # faster on a busy disk, for ~0.7 GB of RAM. PGBRANCH_CONTAINERD_TMPFS=1|0|auto (default auto:
  # on when /dev/shm has 4 GiB free).
  local tmpfs=${PGBRANCH_CONTAINERD_TMPFS:-auto}
  if [[ $tmpfs == auto ]]; then
    tmpfs=0
    if [[ -d /dev/shm && -w /dev/shm ]] && (($(df -Pk /dev/shm | awk 'NR==2{print $4}') >= 4 * 1024 * 1024)); then tmpfs=1; fi
  fi
  if [[ $tmpfs == 1 && ! -e $CTRD/root && -d /dev/shm && -w /dev/shm ]]; then
    ln -s "$(mktemp -d /dev/shm/pgbranch-containerd.XXXXXX)" "$CTRD/root"
  fi
  mkdir -p "$CTRD/root/" "$CTRD/state" "$CTRD/runc" "$CTRD/opt"
  cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$(readlink -f "$CTRD/root")"
state = "$CTRD/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$CTRD/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$NODE/cni/bin"
    conf_dir = "$NODE/cni/conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = ""
EOF
}

start_containerd() {
  if running containerd "$CTRD/config.toml"; then
    log "containerd already running (pid $(pid_of containerd))"
    return 0
  fi
  rm -f "$SOCK" "$SOCK.ttrpc"
  start containerd containerd --config "$CTRD/config.toml"
  local i
  for ((i = 0; i < 300; i++)); do
    if [[ -S $SOCK ]] && ctr -a "$SOCK" version >/dev/null 2>&1; then return 0; fi
    running containerd "$CTRD/config.toml" || fail "containerd exited"
    sleep 0.05
  done
  fail "containerd socket $SOCK not ready after 15s"
}

# ---- kubelet ------------------------------------------------------------------------------------
# cgroup v1: the root must exist in every hierarchy (cpuset needs cpus/mems); v2: one directory.
make_cgroup_root() {
  local h
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -f $h/cgroup.procs ]] || continue
    mkdir -p "$h${CGROUP_ROOT#/}"
    if [[ -f $h/cpuset.cpus && -f $h${CGROUP_ROOT#/}/cpuset.cpus ]]; then
      [[ -n $(cat "$h${CGROUP_ROOT#/}/cpuset.cpus") ]] || cat "$h/cpuset.cpus" >"$h${CGROUP_ROOT#/}/cpuset.cpus"
      [[ -n $(cat "$h${CGROUP_ROOT#/}/cpuset.mems") ]] || cat "$h/cpuset.mems" >"$h${CGROUP_ROOT#/}/cpuset.mems"
    fi
  done
}

write_kubelet_config() {
  mkdir -p "$NODE/root" "$NODE/pod-logs"
  make_cgroup_root
  local dns=""
  [[ -z $CLUSTER_DNS ]] || dns="clusterDNS: [$CLUSTER_DNS]"
  cat >"$NODE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 0.0.0.0
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
tlsCertFile: $NODE/pki/kubelet-serving.crt
tlsPrivateKeyFile: $NODE/pki/kubelet-serving.key
authentication:
  x509:
    clientCAFile: $DIR/pki/ca.crt
  webhook:
    enabled: false
  anonymous:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failSwapOn: false
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
podLogsDir: $NODE/pod-logs
clusterDomain: cluster.local
$dns
resolvConf: /etc/resolv.conf
staticPodPath: ""
registerNode: true
serializeImagePulls: false
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 876000h
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
  imagefs.inodesFree: "1%"
evictionPressureTransitionPeriod: 5s
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 10s
runtimeRequestTimeout: 2m
maxPods: 110
protectKernelDefaults: false
EOF
}

start_kubelet() {
  if running kubelet "$NODE/kubelet-config.yaml"; then
    log "kubelet already running (pid $(pid_of kubelet))"
    KUBELET_STARTED=""
    return 0
  fi
  start kubelet "$BIN/kubelet" \
    --config "$NODE/kubelet-config.yaml" \
    --kubeconfig "$NODE/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" \
    --node-ip "$GATEWAY" \
    --root-dir "$NODE/root" \
    --cert-dir "$NODE/pki" \
    --v=1
}

# node_ready [SINCE_EPOCH_SECONDS]: Ready=True, with a heartbeat not older than SINCE (so a Node
# object left over from an earlier kubelet does not count).
node_ready() {
  local out st hb
  out=$("${KUBECTL[@]}" get node "$NODE_NAME" \
    -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null) || return 1
  read -r st hb <<<"$out"
  [[ $st == True ]] || return 1
  [[ -z ${1:-} ]] && return 0
  [[ -n $hb ]] && (($(date -d "$hb" +%s) >= $1))
}

wait_ready() {
  local i deadline=$((NODE_TIMEOUT * 5))
  for ((i = 0; i < deadline; i++)); do
    node_ready "$KUBELET_STARTED" && return 0
    running kubelet "$NODE/kubelet-config.yaml" || fail "kubelet exited"
    running containerd "$CTRD/config.toml" || fail "containerd exited"
    sleep 0.2
  done
  "${KUBECTL[@]}" describe node "$NODE_NAME" >&2 || true
  fail "node $NODE_NAME not Ready after ${NODE_TIMEOUT}s"
}

# The node lifecycle controller lifts node.kubernetes.io/not-ready once the node is Ready; lift
# it ourselves if it lingers (no controller-manager, or a slow one).
clear_taints() {
  local i taints
  for ((i = 0; i < 15; i++)); do
    taints=$("${KUBECTL[@]}" get node "$NODE_NAME" -o 'jsonpath={.spec.taints[*].key}' 2>/dev/null || true)
    [[ $taints == *node.kubernetes.io/not-ready* ]] || return 0
    sleep 0.2
  done
  "${KUBECTL[@]}" taint node "$NODE_NAME" node.kubernetes.io/not-ready- >/dev/null 2>&1 || true
  log "removed lingering node.kubernetes.io/not-ready taint"
}

write_env() {
  cat >"$DIR/node-env.sh" <<EOF
export PGBRANCH_CONTAINERD_SOCK=$SOCK
export CONTAINERD_ADDRESS=$SOCK
export CONTAINERD_NAMESPACE=k8s.io
export PGBRANCH_NODE_NAME=$NODE_NAME
export PGBRANCH_POD_SUBNET=$SUBNET
export PGBRANCH_POD_GATEWAY=$GATEWAY
export PGBRANCH_CNI_BRIDGE=$BRIDGE
EOF
}

# What `up` used, so `down`/`status` from a shell without the same environment act on it.
save_settings() {
  cat >"$NODE/settings" <<EOF
SUBNET=$SUBNET
GATEWAY=$GATEWAY
BRIDGE=$BRIDGE
KUBELET_PORT=$KUBELET_PORT
CGROUP_ROOT=$CGROUP_ROOT
EOF
}

cmd_up() {
  local t0 t
  t0=$(now_ms)
  need_tools
  mkdir -p "$NODE" "$LOGS" "$RUN" "$CTRD"
  if running containerd "$CTRD/config.toml" && running kubelet "$NODE/kubelet-config.yaml" && node_ready; then
    log "already up (node $NODE_NAME Ready, containerd $SOCK)"
    write_env
    return 0
  fi
  t=$(now_ms)
  save_settings
  make_certs
  setup_bridge
  write_cni
  write_containerd_config
  write_kubelet_config
  log "certificates, bridge $BRIDGE ($GATEWAY/$(prefix_len)), configs ($(since "$t"))"
  t=$(now_ms)
  start_containerd
  log "containerd ready on $SOCK ($(since "$t"))"
  t=$(now_ms)
  PGBRANCH_CONTAINERD_SOCK=$SOCK bash "$ROOT/scripts/images/build-images.sh" --pause-only --import \
    || fail "pause image"
  log "pause image $PAUSE_IMAGE imported ($(since "$t"))"
  t=$(now_ms)
  KUBELET_STARTED=$(date +%s)
  start_kubelet
  wait_ready
  log "node $NODE_NAME Ready ($(since "$t"))"
  clear_taints
  write_env
  log "node up in $(since "$t0"): containerd $SOCK, pods on $SUBNET via $BRIDGE, host $GATEWAY"
}

# ---- down ---------------------------------------------------------------------------------------
# PIDs of the runc shims of our containerd: containerd-shim-runc-v2 with our socket as an argument
# (no broad names: the socket path is unique to this state dir).
our_shims() {
  local f pid shim
  shim=$(readlink -f "$(command -v containerd-shim-runc-v2)")
  for f in $(grep -lxzF -- "$SOCK" /proc/[0-9]*/cmdline 2>/dev/null); do
    pid=${f#/proc/}; pid=${pid%/cmdline}
    [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$shim" ]] && echo "$pid"
  done
  return 0
}

# Our pods' network namespaces: CNI netns holding an address of our subnet.
our_netns() {
  local ns base=${GATEWAY%.*}.
  [[ -d /var/run/netns ]] || return 0
  for ns in /var/run/netns/cni-*; do
    [[ -e $ns ]] || continue
    if grep -qF "inet $base" <<<"$(ip -n "${ns##*/}" -4 -o addr show 2>/dev/null)"; then echo "${ns##*/}"; fi
  done
}

rmdir_tree() { # remove a cgroup directory tree depth-first (only empty cgroups go)
  [[ -d $1 ]] || return 0
  find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

cmd_down() {
  local t0 pid c ns
  t0=$(now_ms)
  [[ -d $DIR ]] || { log "nothing to stop ($DIR does not exist)"; return 0; }
  # Only a state dir whose `up` ran owns a node: the bridge, netns and cgroups named in its
  # settings. Without them this is a control plane without a node: touch nothing global.
  if [[ ! -f $NODE/settings ]] && ! running containerd "$CTRD/config.toml" && ! running kubelet "$NODE/kubelet-config.yaml"; then
    log "no node in $DIR"
    return 0
  fi
  mkdir -p "$RUN"
  local t
  t=$(now_ms)
  stop kubelet "kubelet" 10
  log "  kubelet stopped ($(since "$t"))"
  # the node leaves the cluster (the pod GC controller then drops its pods); best effort
  if [[ -f $DIR/kubeconfig && -x $BIN/kubectl ]]; then
    "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" --request-timeout 5s delete node "$NODE_NAME" \
      --wait=false >/dev/null 2>&1 || true
  fi
  # sandbox/container ids, to find CNI result files of the loopback network later
  local ids=()
  [[ -d $CTRD/state/io.containerd.runtime.v2.task/k8s.io ]] &&
    mapfile -t ids < <(ls "$CTRD/state/io.containerd.runtime.v2.task/k8s.io")
  # containers: kill through runc (private root), then the shims of our containerd
  if [[ -d $CTRD/runc ]]; then
    local rroot
    for rroot in "$CTRD"/runc/*; do
      [[ -d $rroot ]] || continue
      for c in $(runc --root "$rroot" list -q 2>/dev/null); do
        runc --root "$rroot" kill -a "$c" KILL 2>/dev/null || runc --root "$rroot" kill "$c" KILL 2>/dev/null || true
      done
    done
    sleep 0.2
    for rroot in "$CTRD"/runc/*; do
      [[ -d $rroot ]] || continue
      for c in $(runc --root "$rroot" list -q 2>/dev/null); do
        runc --root "$rroot" delete -f "$c" 2>/dev/null || true
      done
    done
  fi
  log "  containers killed ($(since "$t"))"
  stop containerd "$CTRD/config.toml" 10
  log "  containerd stopped ($(since "$t"))"
  # their containers are gone: the shims have nothing left to do
  for pid in $(our_shims); do kill -KILL "$pid" 2>/dev/null || true; done
  # kubelet's pod cgroups (cgroup v1 controllers and the unified hierarchy)
  for c in /sys/fs/cgroup/*/"${CGROUP_ROOT#/}" /sys/fs/cgroup/"${CGROUP_ROOT#/}"; do
    rmdir_tree "$c"
  done
  # mounts under the state dir, deepest first (overlay rootfs, shm, kubelet volumes)
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
  if [[ -f $NODE/settings ]]; then
    for ns in $(our_netns); do ip netns delete "$ns" 2>/dev/null || true; done
    if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE" 2>/dev/null || true; fi
  fi
  if [[ -f $NODE/ip_forward.orig ]]; then
    cat "$NODE/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
  fi
  rm -f /var/lib/cni/results/"$CNI_NET"-* 2>/dev/null || true
  for c in "${ids[@]}"; do rm -f /var/lib/cni/results/cni-loopback-"$c"-* 2>/dev/null || true; done
  if [[ -d /var/log/containers ]]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$NODE/*" -delete 2>/dev/null || true
  fi
  local shm
  shm=$(readlink "$CTRD/root" 2>/dev/null || true)
  [[ $shm != /dev/shm/pgbranch-containerd.* ]] || rm -rf "$shm"
  rm -rf "$NODE" "$CTRD" "$DIR/node-env.sh"
  rm -f "$RUN/containerd.pid" "$RUN/kubelet.pid"
  log "down ($(since "$t0"))"
}

cmd_status() {
  local rc=0
  if running containerd "$CTRD/config.toml"; then
    printf '%-24s running  pid %-8s %s\n' containerd "$(pid_of containerd)" "$SOCK"
  else
    printf '%-24s STOPPED\n' containerd; rc=1
  fi
  if running kubelet "$NODE/kubelet-config.yaml"; then
    printf '%-24s running  pid %-8s node %s\n' kubelet "$(pid_of kubelet)" "$NODE_NAME"
  else
    printf '%-24s STOPPED\n' kubelet; rc=1
  fi
  if [[ -f $DIR/kubeconfig && -x $BIN/kubectl ]]; then
    KUBECTL=("$BIN/kubectl" --kubeconfig "$DIR/kubeconfig")
    if node_ready; then printf '%-24s Ready\n' "node $NODE_NAME"; else printf '%-24s NOT Ready\n' "node $NODE_NAME"; rc=1; fi
  fi
  return $rc
}

main() {
  local cmd=${1:-}
  shift || true
  [[ $(id -u) == 0 ]] || { log "needs root (containerd, runc, bridge, mounts)"; exit 1; }
  # shellcheck disable=SC1091
  [[ $cmd == up || ! -f $NODE/settings ]] || source "$NODE/settings"
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cat "$DIR/node-env.sh" ;;
    *) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
