#!/usr/bin/env bash
# Tier 3 end to end on a real node: a private cluster (cluster.sh up --node: API server, etcd,
# controller-manager, scheduler, containerd + runc + kubelet), the images built and imported,
# a pageserver on the host's pod gateway, pgbranch-proxy --kubernetes as a hostNetwork pod and
# pgbranch-operator on the host, with pageserver auth on (signed tokens; each compute pod gets a
# tenant token). Then, through the proxy with the URI from the credentials Secret:
#   root Branch main + Endpoint main (suspendTimeout 15s) -> Running -> create, insert, read;
#   child Branch dev + Endpoint dev -> sees main's rows; its writes are invisible on main;
#   main suspends when idle (phase Suspended, zero pods) -> a new connection wakes it (timed);
#   a second ReadWrite Endpoint on main -> Conflict and no pod.
# One line per check (PASS/FAIL); on failure prints the operator, pageserver, proxy and pod logs;
# exits non-zero if any check fails. Needs root (exit 77 otherwise).
# Env: PGBRANCH_ROOT, PGBRANCH_BIN_DIR, PGBRANCH_K8S_BIN, PGBRANCH_E2E_KEEP=1 (see lib.sh).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=e2e
E2E_NET=${PGBRANCH_E2E_NET:-81}
# shellcheck source=lib.sh
source "$HERE/lib.sh"

T0=$(now_ms)
# shellcheck source=../lib/checks.sh
source "$HERE/../lib/checks.sh"
# expect NAME WANT COMMAND...: COMMAND's output equals WANT (once).
expect() {
  local name=$1 want=$2 out; shift 2
  if out=$("$@" 2>&1) && [[ $out == "$want" ]]; then pass "$name"; return 0; fi
  fail "$name" "want '$want', got: $out"; return 1
}
# abort NAME [DETAIL]: a step everything after depends on failed.
abort() { fail "$@"; exit 1; }

finish() {
  local rc=$?
  set +e
  ((failed > 0)) && rc=1
  ((rc == 0)) || e2e_dump
  e2e_teardown
  if ((rc == 77)); then exit 77; fi
  echo "== $passed passed, $failed failed in $(( ($(now_ms) - T0) / 1000 )) s"
  ((failed == 0)) || printf '   failed: %s\n' "${failures[@]}"
  if ((rc == 0)); then echo "PASS k8s_e2e_test"; else echo "FAIL k8s_e2e_test"; fi
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---- setup -----------------------------------------------------------------------------------
e2e_setup
rc=$?
((rc == 77)) && exit 77
((rc == 0)) || abort "setup: cluster + node, images, pageserver, proxy pod, operator"
pass "setup: cluster + node, images, pageserver, proxy pod, operator"

# ---- main: Running, data through the proxy ---------------------------------------------------
t=$(now_ms)
apply_branch main || abort "apply Branch main"
apply_endpoint main main 15s || abort "apply Endpoint main"
check "Endpoint main reaches phase Running" 180 ep_is Running main || abort "Endpoint main not Running"
echo "      Branch + Endpoint main to Running: $(( $(now_ms) - t )) ms"
check "Secret main-credentials has a uri" 30 bash -c "kubectl get secret main-credentials -o jsonpath='{.data.uri}' | grep -q ."
# auth is on (lib.sh): the compute's tenant token reads its namespace's tenant only
kubectl get secret main-pageserver-token -o jsonpath='{.data.token}' | base64 -d >"$E2E_WORK/main.token"
expect "compute token (Secret main-pageserver-token) lists tenant default's timelines" "ok" bash -c "'$E2E_BIN/pagectl' --pageserver '$E2E_PS' --token-file '$E2E_WORK/main.token' timeline list --tenant default >/dev/null && echo ok"
expect "... and is refused on another tenant" "PERMISSION_DENIED" bash -c "'$E2E_BIN/pagectl' --pageserver '$E2E_PS' --token-file '$E2E_WORK/main.token' timeline list --tenant other 2>&1 | grep -o PERMISSION_DENIED"
URI_MAIN=$(ep_uri main)
echo "      uri: $(sed -E 's#(//[^:]+:)[^@]+@#\1***@#' <<<"$URI_MAIN")"
[[ $URI_MAIN == *"127.0.0.1:$E2E_PROXY_PORT"* ]] && pass "uri points at the proxy" || fail "uri points at the proxy" "$URI_MAIN"
[[ $URI_MAIN == *endpoint* ]] && pass "uri carries the endpoint routing option" || fail "uri carries the endpoint routing option" "$URI_MAIN"

if out=$(q "$URI_MAIN" "create table items(id int primary key, name text);
                       insert into items select g, 'item-' || g from generate_series(1, 100) g;
                       select count(*) from items" 2>&1) && [[ $out == 100 ]]; then
  pass "psql through the proxy: create table, insert 100 rows on main"
else
  abort "psql through the proxy: create table, insert 100 rows on main" "$out"
fi
expect "read back on main" "100|5050|item-42" q "$URI_MAIN" "select count(*), sum(id), (select name from items where id = 42) from items"
expect "wrong password is refused" "refused" bash -c "PGCONNECT_TIMEOUT=60 psql '$(sed -E 's#(//[^:]+:)[^@]+@#\1wrong@#' <<<"$URI_MAIN")' -Atc 'select 1' >/dev/null 2>&1 && echo accepted || echo refused"

# ---- child branch dev ------------------------------------------------------------------------
# (a checkpoint is not needed: the child starts at the parent's head LSN)
t=$(now_ms)
apply_branch dev main || fail "apply Branch dev"
apply_endpoint dev dev 300s || fail "apply Endpoint dev"
check "Endpoint dev reaches phase Running" 180 ep_is Running dev
echo "      Branch + Endpoint dev to Running: $(( $(now_ms) - t )) ms"
check "Secret dev-credentials has a uri" 30 bash -c "kubectl get secret dev-credentials -o jsonpath='{.data.uri}' | grep -q ."
URI_DEV=$(ep_uri dev)
expect "dev sees main's rows" "100|5050" q "$URI_DEV" "select count(*), sum(id) from items"
# Before branching at main's head the operator asks main's running compute (its pod IP) to
# CHECKPOINT; main wrote little WAL, so the agent answers that none was needed. An error here
# would be logged as "Cannot checkpoint the parent".
expect "the operator asked main's compute pod for a checkpoint before branching dev" "asked" bash -c "grep -E '(Checkpointed the parent before branching|The parent needs no checkpoint).*branch=dev' '$E2E_WORK/operator.log' >/dev/null && echo asked || grep 'Cannot checkpoint the parent' '$E2E_WORK/operator.log'"
expect "insert on dev" "101" q "$URI_DEV" "insert into items values (1000, 'dev-only'); select count(*) from items"
expect "dev's row is invisible on main" "100|0" q "$URI_MAIN" "select count(*), count(*) filter (where id = 1000) from items"
expect "main's later insert is invisible on dev" "0" bash -c "q() { PGCONNECT_TIMEOUT=60 psql \"\$1\" -X -Atqc \"\$2\"; }; q '$URI_MAIN' \"insert into items values (2000, 'main-later')\" && q '$URI_DEV' 'select count(*) from items where id = 2000'"

# ---- main suspends when idle, a connection wakes it ------------------------------------------
t=$(now_ms)
check "Endpoint main suspends after 15s idle: phase Suspended, zero pods" 150 ep_suspended main
echo "      idle -> Suspended + zero pods after $(( $(now_ms) - t )) ms (suspendTimeout 15s)"
ep_is Running dev >/dev/null && pass "Endpoint dev (suspendTimeout 300s) keeps running" || fail "Endpoint dev (suspendTimeout 300s) keeps running" "$(ep_phase dev)"
t=$(now_ms)
if out=$(q "$URI_MAIN" "select count(*) from items" 2>&1) && [[ $out == 101 ]]; then
  WAKE_MS=$(( $(now_ms) - t ))
  pass "a new connection wakes main and reads its rows (wake + first result ${WAKE_MS} ms)"
else
  fail "a new connection wakes main and reads its rows" "$out"
fi
check "main is Running with one pod again" 60 bash -c "[[ \$(kubectl get endpoints.pgbranch.io main -o jsonpath='{.status.phase}') == Running && \$(kubectl get pods -l pgbranch.io/endpoint=main -o name | wc -l) == 1 ]]"
expect "data written before the suspend survived (main-later row)" "main-later" q "$URI_MAIN" "select name from items where id = 2000"

# ---- a second ReadWrite endpoint on main -----------------------------------------------------
apply_endpoint main-2 main 15s || fail "apply Endpoint main-2"
check "a second ReadWrite Endpoint main-2 on main: phase Conflict" 60 bash -c "[[ \$(kubectl get endpoints.pgbranch.io main-2 -o jsonpath='{.status.phase}/{.status.conditions[?(@.type==\"Ready\")].reason}') == Conflict/Conflict ]]"
sleep 2
pods=$(ep_pods main-2)
[[ -z $pods ]] && pass "... and no pod for main-2" || fail "... and no pod for main-2" "$pods"
URI_MAIN2=$(ep_uri main-2 2>/dev/null)
[[ -n $URI_MAIN2 ]] || URI_MAIN2=${URI_MAIN/endpoint%3Dmain./endpoint%3Dmain-2.}
out=$(PGCONNECT_TIMEOUT=30 timeout 60 psql "$URI_MAIN2" -Atc 'select 1' 2>&1)
[[ $out != 1 ]] && pass "... and a connection to main-2 is refused ($(head -n1 <<<"$out" | cut -c1-100))" || fail "... and a connection to main-2 is refused" "$out"
expect "main still answers" "101" q "$URI_MAIN" "select count(*) from items"
