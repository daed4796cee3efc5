#!/usr/bin/env bash
# Operator scale benchmark against a real API server (DESIGN.md section 7: "operator: Branch CRs
# to Ready: 1,000 in <= 60 s against a real API server").
#
#   scripts/bench-k8s.sh [--quick] [--n N] [--no-endpoints] [--parallel P] [--keep-dir]
#
# Starts its own loopback cluster (scripts/k8s/cluster.sh, private state dir, free port), a
# pageserver and the operator (--leader-elect false), creates a root Branch `main`, then:
#   1. N child Branches created with P parallel `kubectl create -f` (creation timed alone), time
#      until all are phase Ready; per-branch latency from a watch (ms, first ADDED -> Ready as
#      a watcher sees it) and from conditions (lastTransitionTime - creationTimestamp, 1 s).
#   2. With KWOK (fake node, no kubelet): N Endpoints, one per branch; time until all are phase
#      Running (their compute pods scheduled onto the fake node and made Ready by kwok).
# Reports operator RSS and mean reconcile duration per kind (/metrics). Everything is torn down
# on exit. --quick: N=50 (CI smoke). Binaries come from $BUILD_DIR/bin (default build/bin); this
# script does not build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
helper="$root/tests/bench/k8s/phases.py"
N=1000
PAR=4
ENDPOINTS=1
KEEP=0
TIMEOUT=${BENCH_K8S_TIMEOUT:-600}
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) N=50 ;;
    --n) N=$2; shift ;;
    --parallel) PAR=$2; shift ;;
    --no-endpoints) ENDPOINTS=0 ;;
    --keep-dir) KEEP=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench-k8s.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "bench-k8s: $*" >&2; }
now() { date +%s.%3N; }
elapsed() { python3 -c "print('%.2f' % ($2 - $1))"; }
free_port() { python3 "$root/scripts/free-port.py"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

for b in pgbranch-operator pgbranch-pageserver; do
  [[ -x $build/bin/$b ]] || { log "$build/bin/$b missing (build it first)"; exit 2; }
done

WORK=$(mktemp -d /tmp/pgbranch-bench-k8s.XXXXXX)
export PGBRANCH_K8S_DIR=$WORK/k8s
export PGBRANCH_K8S_PORT=$(free_port)
PIDS=()   # our own daemons and watchers, stopped in reverse order

cleanup() {
  local rc=$? i pid
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null
  done
  "$root/scripts/k8s/cluster.sh" down >/dev/null 2>&1 || log "cluster.sh down failed"
  if [[ $KEEP == 1 || $rc != 0 ]]; then
    log "logs kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- cluster, pageserver, operator ------------------------------------------------------------
t=$(now)
"$root/scripts/k8s/cluster.sh" up >"$WORK/cluster.log" 2>&1 || { cat "$WORK/cluster.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$PGBRANCH_K8S_DIR/env.sh"
log "cluster up in $(elapsed "$t" "$(now)") s (https://127.0.0.1:$PGBRANCH_K8S_PORT)"
kubectl apply --server-side -f "$root/crds/" >/dev/null
bash "$root/scripts/k8s/cluster.sh" established crd/branches.pgbranch.io crd/endpoints.pgbranch.io

PS_PORT=$(free_port)
mkdir -p "$WORK/pageserver"
"$build/bin/pgbranch-pageserver" --data-dir "$WORK/pageserver" --listen "127.0.0.1:$PS_PORT" \
  >"$WORK/pageserver.log" 2>&1 &
PIDS+=($!)
OP_PORT=$(free_port)
"$build/bin/pgbranch-operator" --kubeconfig "$KUBECONFIG" --pageserver "127.0.0.1:$PS_PORT" \
  --listen "127.0.0.1:$OP_PORT" --namespaces default --leader-elect false --log-level warning \
  >"$WORK/operator.log" 2>&1 &
OP_PID=$!
PIDS+=($OP_PID)
for ((i = 0; i < 200; i++)); do
  curl -sf "http://127.0.0.1:$OP_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$OP_PID" 2>/dev/null || { tail -20 "$WORK/operator.log" >&2; log "operator exited"; exit 1; }
  sleep 0.1
done
metrics() { curl -sf "http://127.0.0.1:$OP_PORT/metrics"; }

kubectl apply -f - >/dev/null <<'EOF'
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: main}
spec: {noExpiry: true}
EOF
kubectl wait --for=jsonpath='{.status.phase}'=Ready --timeout 60s branch/main >/dev/null \
  || { tail -20 "$WORK/operator.log" >&2; log "root branch main not Ready"; exit 1; }
RSS0=$(rss_mb "$OP_PID")
log "operator ready (pid $OP_PID, RSS $RSS0 MB), branch main Ready"

# watch_phases RESOURCE TARGET OUT: record first sight and first TARGET phase of each object.
watch_phases() {
  python3 "$helper" record "$3" "$2" kubectl get "$1" --watch-only \
    -o jsonpath='{.metadata.name} {.status.phase}{"\n"}' 2>>"$WORK/watch.err" &
  PIDS+=($!)
  sleep 1   # the watch starts from its initial list's resourceVersion: let that list finish
}

# create_parallel KIND: N documents in PAR files, PAR concurrent `kubectl create`; sets RESULT
# (seconds). Long waits run in this shell, not in $(...), so that a TERM trap fires at once.
create_parallel() {
  local kind=$1 files=() p pids=() t0 rc=0
  for ((p = 0; p < PAR; p++)); do files+=("$WORK/$kind-$p.yaml"); done
  python3 "$helper" manifests "$kind" "$N" "${files[@]}"
  t0=$(now)
  for f in "${files[@]}"; do
    kubectl create -f "$f" >/dev/null 2>>"$WORK/create.err" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [[ $rc == 0 ]] || { tail -5 "$WORK/create.err" >&2; log "kubectl create failed"; exit 1; }
  RESULT=$(elapsed "$t0" "$(now)")
}

# wait_done OUT T0 LABEL: until N DONE lines; sets RESULT to the seconds from T0 to the last.
wait_done() {
  local out=$1 t0=$2 label=$3 done=0 last=-1 tick=0 t
  while :; do
    done=$(grep -c '^DONE' "$out" 2>/dev/null || true)
    [[ $done -ge $N ]] && break
    t=$(now)
    if python3 -c "import sys; sys.exit(0 if $t - $t0 > $TIMEOUT else 1)"; then
      log "$label: only $done/$N after ${TIMEOUT}s"
      return 1
    fi
    kill -0 "$OP_PID" 2>/dev/null || { log "operator died"; tail -20 "$WORK/operator.log" >&2; return 1; }
    if ((tick % 10 == 0)) && [[ $done != "$last" ]]; then
      log "$label: $done/$N after $(elapsed "$t0" "$t") s (queue $(metrics | awk '/^pgbranch_operator_queue_depth/ {printf "%s=%s ", $1, $2}'))"
      last=$done
    fi
    ((tick++)) || true
    sleep 0.5
  done
  # the last DONE timestamp (as the watcher saw it) minus T0
  RESULT=$(python3 -c "
import sys
t=max(float(l.split()[2]) for l in open('$out') if l.startswith('DONE'))
print('%.2f' % (t - $t0))")
}

# ---- 1. Branches ------------------------------------------------------------------------------
watch_phases branches.pgbranch.io Ready "$WORK/branches.rec"
log "creating $N Branches ($PAR parallel kubectl create)"
TB0=$(now)
create_parallel branch
B_APPLY=$RESULT
log "created in $B_APPLY s; waiting for Ready"
if wait_done "$WORK/branches.rec" "$TB0" branches; then B_READY=$RESULT; else B_READY="not all Ready (timeout)"; fi
read -r BL_N BL_P50 BL_P90 BL_P99 BL_MAX < <(python3 "$helper" stats "$WORK/branches.rec" 0) || true
kubectl get branches -o json >"$WORK/branches.json"
read -r BC_N BC_P50 BC_P99 BC_MAX < <(python3 "$helper" condlat "$WORK/branches.json") || true
RSS1=$(rss_mb "$OP_PID")
metrics >"$WORK/metrics-branches.txt"
B_RATE=$(python3 -c "print('%.0f' % ($N / float('$B_READY')))" 2>/dev/null || echo "?")
log "branches: all Ready in $B_READY s; RSS $RSS1 MB"

# ---- 2. Endpoints on KWOK ---------------------------------------------------------------------
E_APPLY="-" E_READY="(skipped)" RSS2="-" EL_P50="-" EL_P99="-" E_RATE="-" E_NOTE=""
if [[ $ENDPOINTS == 1 ]]; then
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-0
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {type: kwok, kubernetes.io/hostname: kwok-0, kubernetes.io/os: linux}
spec: {}
status:
  allocatable: {cpu: "1000", memory: 4Ti, pods: "$((N + 110))"}
  capacity: {cpu: "1000", memory: 4Ti, pods: "$((N + 110))"}
EOF
  # Node heartbeats through Leases (without them the node lifecycle controller marked the node's
  # pods NotReady after node-monitor-grace-period, and kwok never made them Ready again).
  # Pod IPs from loopback: the operator's /status polls of these fake pods must not leave the
  # machine (nothing listens there: "connection refused" at once, which counts as busy).
  kwok --kubeconfig "$KUBECONFIG" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --cidr "${BENCH_K8S_POD_CIDR:-127.64.0.1/16}" --node-ip 127.0.0.1 --node-lease-duration-seconds 40 \
    >"$WORK/kwok.log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 300; i++)); do
    [[ $(kubectl get node kwok-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]] && break
    sleep 0.1
  done
  log "fake node kwok-0: Ready=$(kubectl get node kwok-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')"
  watch_phases endpoints.pgbranch.io Running "$WORK/endpoints.rec"
  log "creating $N Endpoints"
  TE0=$(now)
  create_parallel endpoint
  E_APPLY=$RESULT
  log "created in $E_APPLY s; waiting for Running"
  if wait_done "$WORK/endpoints.rec" "$TE0" endpoints; then
    E_READY=$RESULT
    E_RATE=$(python3 -c "print('%.0f' % ($N / $E_READY))")
  else
    E_READY="not all Running (timeout)"
    E_NOTE=$(kubectl get endpoints.pgbranch.io -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c | tr '\n' ' ')
    E_NOTE="phases: $E_NOTE; pods: $(kubectl get pods -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c | tr '\n' ' ')"
    log "$E_NOTE"
  fi
  read -r EL_N EL_P50 EL_P90 EL_P99 EL_MAX < <(python3 "$helper" stats "$WORK/endpoints.rec" 0) || true
  RSS2=$(rss_mb "$OP_PID")
fi
metrics >"$WORK/metrics-end.txt"
RECON=$(python3 "$helper" metric "$WORK/metrics-end.txt" | awk '{printf "%s %s ms (%s passes, %s errors); ", $1, $2, $3, $4}')

# ---- report -------------------------------------------------------------------------------------
fmt() { printf "%'d" "$1"; }
cat <<EOF

## pgbranch operator at scale (scripts/bench-k8s.sh, N=$N)

$(nproc) cores, $(uname -r); kube-apiserver v1.33.13 + etcd (loopback, memory-backed); operator
--leader-elect false, one worker per kind. Latency p50/p99: from a watcher's first sight of the
object (ADDED) to the first event with the target phase, ms resolution; "cond" = Ready condition
lastTransitionTime (µs, written by the operator) - creationTimestamp (whole seconds: up to +1 s).

| what | result | anchor/target |
|---|---|---|
| $(fmt "$N") Branches created (kubectl create, $PAR parallel) | $B_APPLY s | — |
| $(fmt "$N") Branches to Ready (from first create) | $B_READY s (${B_RATE}/s) | ≤ 60 s |
| Branch created→Ready latency p50 / p90 / p99 / max (watch) | $BL_P50 / $BL_P90 / $BL_P99 / $BL_MAX s | — |
| Branch created→Ready latency p50 / p99 (cond, 1 s) | $BC_P50 / $BC_P99 s (n=$BC_N) | — |
| operator RSS: root branch only / $(fmt "$N") Branches | $RSS0 / $RSS1 MB | — |
| $(fmt "$N") Endpoints created (kubectl create, $PAR parallel) | $E_APPLY s | — |
| $(fmt "$N") Endpoints to Running (KWOK pods) | $E_READY s (${E_RATE}/s) | — |
| Endpoint created→Running latency p50 / p99 (watch) | $EL_P50 / $EL_P99 s | — |
| operator RSS at $(fmt "$N") Branches + $(fmt "$N") Endpoints | $RSS2 MB | — |
| mean reconcile duration per kind | ${RECON%; } | — |
EOF
[[ -z $E_NOTE ]] || echo "
Endpoints not all Running: $E_NOTE"
