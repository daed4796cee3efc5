#!/usr/bin/env bash
# Benchmark on a real node (the setup of tests/k8s/e2e: private cluster with containerd + runc +
# kubelet, images imported, pageserver on the pod gateway, pgbranch-proxy --kubernetes as a
# hostNetwork pod, pgbranch-operator on the host):
#   (a) wake from zero: Endpoint with suspendTimeout 3s; before each cycle wait for phase
#       Suspended and zero pods; then time `psql "$uri" -c 'select ...'` (connect -> first
#       result, the proxy holds the client while the pod is created). Per cycle also where the
#       time went, from timestamps: proxy's wake annotation, operator's "Created compute pod",
#       the compute container's first log line and "accepts connections" (kubelet timestamps),
#       the kubelet's readiness result (kubelet.log).
#   (b) new branch -> first query: kubectl apply Branch + Endpoint, wait for the credentials
#       Secret, psql through the proxy until it answers.
# Prints Markdown tables next to DESIGN.md section 7's anchors.
#
#   scripts/bench-k8s-e2e.sh [--cycles N (default 20)] [--runs M (default 10)] [--quick (5/3)]
# Env: PGBRANCH_ROOT, PGBRANCH_BIN_DIR (default build/bin), PGBRANCH_K8S_BIN, PGBRANCH_E2E_KEEP=1.
set -uo pipefail
ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export PGBRANCH_ROOT=$ROOT
CYCLES=20
RUNS=10
while (($#)); do
  case $1 in
    --cycles) CYCLES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --quick) CYCLES=5; RUNS=3; shift ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
E2E_NAME=bench-e2e
E2E_NET=${PGBRANCH_E2E_NET:-82}
# shellcheck source=../tests/k8s/e2e/lib.sh
source "$ROOT/tests/k8s/e2e/lib.sh"

die() { echo "bench: $*" >&2; exit 1; }
finish() {
  local rc=$?
  set +e
  ((rc == 0)) || e2e_dump
  [[ -n ${E2E_WORK:-} && -d ${E2E_WORK:-} ]] && cp "$E2E_WORK/operator.log" "/tmp/bench-k8s-e2e-operator.log" 2>/dev/null
  e2e_teardown
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

e2e_setup || die "setup failed"
RES=$(mktemp /tmp/bench-k8s-e2e.XXXXXX)   # kept: raw numbers

# ---- (a) wake from zero ----------------------------------------------------------------------
apply_branch main || die "apply Branch main"
apply_endpoint bench main 3s || die "apply Endpoint bench"
wait_until 180 ep_is Running bench || die "Endpoint bench not Running: $WAIT_OUT"
wait_until 30 ep_uri bench || die "no Secret bench-credentials"
URI=$(ep_uri bench)
q "$URI" "create table t(x int); insert into t values (42)" || die "first query on bench"

# ts_ms LOGFMT_OR_RFC3339: epoch ms of a timestamp
ts_ms() { python3 -c 'import sys,datetime; s=sys.argv[1].rstrip("Z"); s=s[:26] if "." in s else s; print(int(datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc).timestamp()*1000))' "$1"; }

echo "== (a) wake from zero: $CYCLES cycles (suspendTimeout 3s)"
printf '%-5s %8s | %10s %10s %12s %12s %12s %12s\n' cycle total_ms "conn->ann" "ann->podcr" "podcr->start" "start->pgok" "pgok->ready" "ready->result"
for ((c = 1; c <= CYCLES; c++)); do
  wait_until 120 ep_suspended bench || die "cycle $c: bench not suspended: $WAIT_OUT"
  op_lines=$(wc -l <"$E2E_WORK/operator.log")
  t0=$(now_ms)
  out=$(q "$URI" "select x from t") || die "cycle $c: query failed: $out"
  t1=$(now_ms)
  [[ $out == 42 ]] || die "cycle $c: wrong answer '$out'"
  total=$((t1 - t0))
  # where the time went (best effort: '-' when a timestamp is missing)
  ann=$(kubectl get endpoints.pgbranch.io bench -o jsonpath='{.metadata.annotations.pgbranch\.io/wake-requested-at}')
  a_ms=$( [[ -n $ann ]] && ts_ms "$ann" || echo "")
  cr=$(tail -n +"$((op_lines + 1))" "$E2E_WORK/operator.log" | grep 'Created compute pod' | grep 'endpoint=bench' | head -n1 | sed -E 's/^ts=([^ ]+).*/\1/')
  cr_ms=$( [[ -n $cr ]] && ts_ms "$cr" || echo "")
  logs=$(kubectl logs bench-compute --timestamps 2>/dev/null)
  st=$(head -n1 <<<"$logs" | awk '{print $1}')
  st_ms=$( [[ -n $st ]] && ts_ms "$st" || echo "")
  pg=$(grep 'accepts connections' <<<"$logs" | head -n1 | awk '{print $1}')
  pg_ms=$( [[ -n $pg ]] && ts_ms "$pg" || echo "")
  # the kubelet's readiness result (klog time, this host's clock and zone)
  rd=$(awk -v s="$(date -u -d "@$((t0 / 1000))" +%H:%M:%S)" '$2 >= s && /SyncLoop \(probe\)/ && /status="ready"/ && /default\/bench-compute/ {print $2; exit}' "$PGBRANCH_K8S_DIR/logs/kubelet.log")
  rd_ms=$( [[ -n $rd ]] && ts_ms "$(date -u +%Y-%m-%d)T$rd" || echo "")
  d() { [[ -n $1 && -n $2 ]] && echo $(($2 - $1)) || echo -; }
  printf '%-5s %8s | %10s %10s %12s %12s %12s %12s\n' "$c" "$total" "$(d "$t0" "$a_ms")" "$(d "$a_ms" "$cr_ms")" \
    "$(d "$cr_ms" "$st_ms")" "$(d "$st_ms" "$pg_ms")" "$(d "$pg_ms" "$rd_ms")" "$(d "$rd_ms" "$t1")"
  echo "wake $total $(d "$t0" "$a_ms") $(d "$a_ms" "$cr_ms") $(d "$cr_ms" "$st_ms") $(d "$st_ms" "$pg_ms") $(d "$pg_ms" "$rd_ms") $(d "$rd_ms" "$t1")" >>"$RES"
done
k delete endpoints.pgbranch.io bench --wait=false >/dev/null

# ---- (b) new branch -> first query -----------------------------------------------------------
echo "== (b) new branch -> first query: $RUNS runs (Branch + Endpoint applied, psql through the proxy)"
for ((r = 1; r <= RUNS; r++)); do
  name=nb-$r
  t0=$(now_ms)
  apply_branch "$name" main || die "apply Branch $name"
  apply_endpoint "$name" "$name" 300s || die "apply Endpoint $name"
  wait_until 120 ep_uri "$name" || die "run $r: no Secret $name-credentials"
  t_secret=$(now_ms)
  wait_until 180 q "$(ep_uri "$name")" "select x from t" || die "run $r: no answer: $WAIT_OUT"
  t1=$(now_ms)
  [[ $WAIT_OUT == 42 ]] || die "run $r: wrong answer '$WAIT_OUT'"
  printf 'run %-3s %6s ms (Secret after %s ms)\n' "$r" "$((t1 - t0))" "$((t_secret - t0))"
  echo "branch $((t1 - t0)) $((t_secret - t0))" >>"$RES"
  # keep the node light: one compute pod at a time
  k delete endpoints.pgbranch.io "$name" >/dev/null
  wait_until 120 bash -c "[[ -z \$(kubectl get pods -l pgbranch.io/endpoint=$name -o name) ]]" || die "pod of $name not gone"
  k delete branch.pgbranch.io "$name" --wait=false >/dev/null
done

# ---- tables ----------------------------------------------------------------------------------
LOCAL=$(awk '/^### Local mode/{f=1} /^## Layout/{f=0} f && /^\| (wake|new branch)/' "$ROOT/README.md")
python3 - "$RES" "$CYCLES" "$RUNS" <<'PY'
import sys, math
rows = [l.split() for l in open(sys.argv[1])]
def pct(v, p):
    v = sorted(v); return v[max(0, math.ceil(p / 100 * len(v)) - 1)]
def stats(v):
    return f"{pct(v,50)} | {pct(v,99)} | {min(v)} | {max(v)}" if v else "- | - | - | -"
wake = [int(r[1]) for r in rows if r[0] == "wake"]
br = [int(r[1]) for r in rows if r[0] == "branch"]
sec = [int(r[2]) for r in rows if r[0] == "branch"]
print()
print("| what (Kubernetes, real kubelet, 2 shared cores) | n | p50 ms | p99 ms | min ms | max ms | anchor (DESIGN.md §7) |")
print("|---|---|---|---|---|---|---|")
print(f"| wake from zero: connect → first result (pod created) | {len(wake)} | {stats(wake)} | p50 ≤ 1 s with pod creation (Xata < 1 s warm pools; Neon/Lakebase a few hundred ms) |")
print(f"| new branch → first query (apply Branch+Endpoint → psql answers) | {len(br)} | {stats(br)} | local mode p50 ≤ 300 ms; Neon cold start ≈ 500 ms |")
print(f"| ... of which: apply → credentials Secret exists | {len(sec)} | {stats(sec)} | |")
parts = ["connect → proxy's wake annotation", "annotation → operator created the pod",
         "pod created → compute container's first log line (schedule, sandbox, CNI, runc)",
         "container start → PostgreSQL accepts connections (pagefs mount, postgres start)",
         "PostgreSQL ready → kubelet's readiness probe passes",
         "probe passed → first result (pod status → API → proxy's informer, connect, query)"]
print()
print("| wake phase (per cycle, from timestamps) | n | p50 ms | p99 ms | min ms | max ms |")
print("|---|---|---|---|---|---|")
for i, name in enumerate(parts):
    v = [int(r[2 + i]) for r in rows if r[0] == "wake" and r[2 + i] != "-"]
    print(f"| {name} | {len(v)} | {stats(v)} |")
PY
if [[ -n $LOCAL ]]; then echo; echo "local mode, for comparison (README.md, Benchmarks / Local mode):"; echo "$LOCAL"; fi
echo "raw numbers: $RES; operator log: /tmp/bench-k8s-e2e-operator.log"
