#!/usr/bin/env bash
# Tier 3: the pgbranch CLI against a Kubernetes cluster, as `pgbranch --kube` and as the kubectl
# plugin `kubectl pgbranch` (build/bin/kubectl-pgbranch on PATH). The cluster is the end-to-end
# setup of tests/k8s/e2e/lib.sh: a real node, the images, the CRDs and the protected-branch
# admission policy, a pageserver, the proxy pod and the operator on the host. Then:
#   branch create (root and child, waits for Running) -> psql with `pgbranch connstr`;
#   branch list/get (-o json parsed), reset (the child sees its parent again), schema-diff
#   (two-way and three-way through a temporary read-only endpoint); endpoint create (read-only)
#   /list/get/suspend (no pod)/start/delete; apply -f (created, then unchanged); connstr -o json;
#   bad input: unknown parent, duplicate name, protected delete, protected reset through apply
#   (the admission policy's message), a parent with children, unknown branch, unknown context,
#   no kubeconfig, RBAC forbidden, CRDs missing (at the end); automatic choice of Kubernetes (said once on stderr);
#   a Promotion (docs/promotion.md) of dev's captured DDL into main: Succeeded, main has the
#   column and index with its rows, the restore point holds main as it was, a failing migration
#   is caught in the rehearsal, bad manifests are refused with the CRD's messages;
#   the plugin's help says `kubectl pgbranch`.
# One line per check; exits non-zero if any fails; 77 without root.
# Env: PGBRANCH_ROOT, PGBRANCH_BIN_DIR (pgbranch, kubectl-pgbranch and the daemons),
#      PGBRANCH_CLI_NET (third octet of the pod subnet, default 93), PGBRANCH_E2E_KEEP=1.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=cli-k8s
E2E_NET=${PGBRANCH_CLI_NET:-93}
# shellcheck source=../e2e/lib.sh
source "$HERE/../e2e/lib.sh"
# shellcheck source=../lib/checks.sh
source "$HERE/../lib/checks.sh"
T0=$(now_ms)

finish() {
  local rc=$?
  set +e
  ((failed > 0)) && rc=1
  ((rc == 0 || rc == 77)) || e2e_dump
  e2e_teardown
  [[ -n ${CLI_TMP:-} ]] && rm -rf "$CLI_TMP"
  ((rc == 77)) && exit 77
  echo "== $passed passed, $failed failed in $(( ($(now_ms) - T0) / 1000 )) s"
  ((failed == 0)) || printf '   failed: %s\n' "${failures[@]}"
  if ((rc == 0)); then echo "PASS k8s_cli_test"; else echo "FAIL k8s_cli_test"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM
abort() { fail "$@"; exit 1; }

[[ -x $E2E_BIN/pgbranch && -e $E2E_BIN/kubectl-pgbranch ]] ||
  { echo "missing $E2E_BIN/pgbranch or kubectl-pgbranch (build pgbranch first)"; exit 1; }

e2e_setup
rc=$?
((rc == 77)) && exit 77
((rc == 0)) || abort "setup: cluster + node, images, pageserver, proxy pod, operator"
pass "setup: cluster + node, images, pageserver, proxy pod, operator"

export PATH=$E2E_BIN:$PATH
CLI_TMP=$(mktemp -d /tmp/cli-k8s-test.XXXXXX)
# No local mode anywhere near: an empty state directory.
export PGBRANCH_HOME=$CLI_TMP/state
OUT=""
# expect NAME WANT_RC SUBSTRING COMMAND...: COMMAND exits WANT_RC and its output (stdout +
# stderr) contains SUBSTRING ("" = anything). The output is kept in $OUT.
expect() {
  local name=$1 want_rc=$2 want=$3 rc; shift 3
  OUT=$("$@" 2>&1); rc=$?
  if [[ $rc == "$want_rc" && $OUT == *"$want"* ]]; then pass "$name"; return 0; fi
  fail "$name" "exit $rc (want $want_rc), want '$want' in:
$OUT"
  return 1
}
pgb() { pgbranch --kube "$@"; }
kpgb() { kubectl pgbranch "$@"; }

# ---- the plugin and the choice of backend ---------------------------------------------------
expect "kubectl plugin list finds kubectl-pgbranch" 0 "kubectl-pgbranch" kubectl plugin list
expect "kubectl pgbranch --help says kubectl pgbranch" 0 "usage: kubectl pgbranch" kpgb --help
expect "kubectl pgbranch branch create --help" 0 "kubectl pgbranch branch create" \
  kpgb branch create --help
expect "unknown context: named, with the next step" 1 'context "nope" not found' \
  pgbranch --context nope branch list
[[ $OUT == *"kubectl config get-contexts"* ]] && pass "unknown context: suggests get-contexts" ||
  fail "unknown context: suggests get-contexts" "$OUT"
expect "no kubeconfig: says where it looked" 1 "--kubeconfig" \
  env -u KUBECONFIG HOME="$CLI_TMP/nohome" pgbranch --kube branch list
expect "API server unreachable: says what to do" 1 "cannot reach the Kubernetes API server" \
  bash -c "sed 's#server: .*#server: https://127.0.0.1:1#' \"\$KUBECONFIG\" >'$CLI_TMP/dead.kubeconfig' &&
           pgbranch --kubeconfig '$CLI_TMP/dead.kubeconfig' branch list"
# Automatic: local mode is not running and a kubeconfig exists -> Kubernetes, said on stderr.
# (--state-dir or $PGBRANCH_HOME name local mode's directory: that is local mode.)
expect "a named --state-dir means local mode" 1 "local mode is not running" \
  env -u PGBRANCH_HOME HOME="$CLI_TMP/home" pgbranch --state-dir "$CLI_TMP/none" branch list
[[ $OUT != *"using Kubernetes"* ]] && pass "a named --state-dir: no Kubernetes" ||
  fail "a named --state-dir: no Kubernetes" "$OUT"
mkdir -p "$CLI_TMP/home"
if [[ -e /var/lib/pgbranch/local.json ]]; then
  echo "SKIP  automatic choice: local mode runs in /var/lib/pgbranch (the default state dir)"
else
  expect "automatic: Kubernetes when local mode is not running, said once" 0 "using Kubernetes" \
    env -u PGBRANCH_HOME HOME="$CLI_TMP/home" pgbranch branch list
  [[ $(grep -c "using Kubernetes" <<<"$OUT") == 1 ]] && pass "automatic: said once" ||
    fail "automatic: said once" "$OUT"
  expect "automatic: -o json stays quiet" 0 '"items"' \
    env -u PGBRANCH_HOME HOME="$CLI_TMP/home" pgbranch -o json branch list
  [[ $OUT != *"using Kubernetes"* ]] && pass "automatic: no note in -o json" ||
    fail "automatic: no note in -o json" "$OUT"
fi

# ---- branches and endpoints ------------------------------------------------------------------
t=$(now_ms)
expect "branch create main (root, waits for its endpoint)" 0 'endpoint "main" is running' \
  pgb branch create main --suspend-timeout 10m || abort "branch create main"
echo "      branch create main to Running: $(( $(now_ms) - t )) ms"
[[ $OUT == *'branch "main" created (a new database)'* ]] && pass "create says: a new database" ||
  fail "create says: a new database" "$OUT"
MAIN=$(pgb connstr main) || abort "connstr main"
expect "psql through connstr main" 0 "" \
  q "$MAIN" "create table t (id int primary key, note text); insert into t values (1, 'main')"

t=$(now_ms)
expect "kubectl pgbranch branch create dev --parent main" 0 'branch "dev" created from main at LSN' \
  kpgb branch create dev --parent main --suspend-timeout 10m || abort "branch create dev"
echo "      branch create dev to Running: $(( $(now_ms) - t )) ms"
DEV=$(kpgb connstr dev) || abort "connstr dev"
expect "dev sees main's rows" 0 "1" q "$DEV" "select count(*) from t"
q "$DEV" "insert into t values (2, 'dev'); create table only_dev (i int)" >/dev/null
expect "dev's writes stay on dev" 0 "1" q "$MAIN" "select count(*) from t"

expect "branch list: the table" 0 "NAME" kpgb branch list
[[ $OUT == *PARENT*PHASE*PROTECTED* && $OUT == *dev*main* ]] && pass "branch list: columns and rows" ||
  fail "branch list: columns and rows" "$OUT"
expect "branch list --tree" 0 '`-- dev' pgb branch list --tree
expect "branch list -o json parses" 0 "dev,main" \
  bash -c "pgbranch --kube -o json branch list | python3 -c 'import json,sys; print(\",\".join(i[\"metadata\"][\"name\"] for i in json.load(sys.stdin)[\"items\"]))'"
expect "branch get dev: parent, endpoint, connection" 0 "connect with:" pgb branch get dev
[[ $OUT == *"parent           main"* && $OUT == *"ReadWrite"* ]] && pass "branch get dev: fields" ||
  fail "branch get dev: fields" "$OUT"
expect "branch get -o json: phase Ready" 0 "Ready" \
  bash -c "pgbranch --kube -o json branch get dev | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"][\"phase\"])'"

expect "schema-diff --two-way: only_dev on dev" 0 "only_dev" pgb branch schema-diff dev --two-way
expect "schema-diff (three-way through a read-only endpoint at the branch point)" 0 "only_dev" \
  pgb branch schema-diff dev
expect "schema-diff --exit-code exits 1 on differences" 1 "only_dev" \
  pgb branch schema-diff dev --two-way --exit-code
check "the temporary branch-point endpoint goes away" 120 \
  bash -c "! pgbranch --kube endpoint list | grep -q -- '-base-'"

expect "branch reset dev" 0 'branch "dev" reset to the head of main' kpgb branch reset dev
expect "after the reset dev has main's rows only" 0 "1" q "$DEV" "select count(*) from t"

expect "endpoint create ro (read-only on main)" 0 'endpoint "ro" is running on branch main' \
  pgb endpoint create ro --branch main --type read-only
expect "endpoint list -o json has main, dev, ro" 0 "dev,main,ro" \
  bash -c "pgbranch --kube -o json endpoint list | python3 -c 'import json,sys; print(\",\".join(i[\"metadata\"][\"name\"] for i in json.load(sys.stdin)[\"items\"]))'"
expect "endpoint get ro" 0 "ReadOnly" kpgb endpoint get ro
expect "read-only endpoint answers" 0 "1" q "$(pgb connstr ro)" "select count(*) from t"
expect "endpoint delete ro" 0 'endpoint "ro" deleted' pgb endpoint delete ro

expect "endpoint suspend dev" 0 'endpoint "dev" suspended' kpgb endpoint suspend dev
check "suspended dev has no pod" 60 bash -c "[[ -z \$(kubectl get pods -l pgbranch.io/endpoint=dev -o name) ]]"
expect "endpoint start dev" 0 'endpoint "dev" is running' kpgb endpoint start dev
expect "dev answers after start" 0 "1" q "$DEV" "select count(*) from t"

expect "connstr -o json: the Secret's keys" 0 "app" \
  bash -c "pgbranch --kube -o json connstr dev | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"uri\"].startswith(\"postgresql://\") and d[\"port\"] > 0 and d[\"password\"]; print(d[\"user\"])'"

# --proxy-address: the same routing key through an address given on the command line (here
# the proxy's own; from outside a cluster, a port-forward).
expect "psql with connstr --proxy-address" 0 "1" \
  q "$(pgb --proxy-address "127.0.0.1:$E2E_PROXY_PORT" connstr dev)" "select count(*) from t"

cat >"$CLI_TMP/feature.yaml" <<YAML
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: feature}
spec: {parent: main, ttl: 24h}
---
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: feature}
spec: {branch: feature, suspendTimeout: 1m}
YAML
expect "apply -f: created" 0 "endpoint/feature created" pgb apply -f "$CLI_TMP/feature.yaml"
[[ $OUT == *"branch/feature created"* ]] && pass "apply -f: branch created" || fail "apply -f: branch created" "$OUT"
expect "apply -f again: unchanged" 0 "branch/feature unchanged" kpgb apply -f "$CLI_TMP/feature.yaml"

# ---- bad input -------------------------------------------------------------------------------
expect "unknown parent: names the flag and the namespace" 1 \
  '--parent: branch "nope" does not exist in namespace default' pgb branch create x --parent nope
expect "unknown parent: nothing created" 1 'branch "x" not found in namespace default' pgb branch get x
expect "duplicate name: local mode's message" 1 \
  'branch "dev" already exists; `pgbranch apply` changes an existing branch' \
  kpgb branch create dev --parent main
expect "unknown branch" 1 'branch "ghost" not found in namespace default' pgb branch get ghost
expect "a parent with children is not deleted" 1 'branch "main" has child branches: dev, feature' \
  pgb branch delete main
expect "branch update dev --protected" 0 'branch "dev" configured' pgb branch update dev --protected
expect "protected delete refused" 1 'branch "dev" is protected' kpgb branch delete dev
expect "protected reset refused" 1 'is protected and cannot be reset' pgb branch reset dev
# Around the CLI's own check: the admission policy refuses a reset through apply.
expect "protected reset through apply: the admission policy's message" 1 \
  "branch dev is protected and cannot be reset" \
  bash -c "printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata: {name: dev}\nspec: {parent: main, noExpiry: true, protected: true, resetGeneration: 9}\n' | pgbranch --kube apply -f -"
expect "branch update dev --no-protected" 0 'branch "dev" configured' pgb branch update dev --no-protected

# RBAC: a ServiceAccount with no rights.
kubectl create serviceaccount nobody >/dev/null 2>&1
if TOKEN=$(kubectl create token nobody 2>/dev/null); then
  kubectl config view --raw --minify >"$CLI_TMP/nobody.kubeconfig"
  KUBECONFIG=$CLI_TMP/nobody.kubeconfig kubectl config set-credentials nobody --token "$TOKEN" >/dev/null
  KUBECONFIG=$CLI_TMP/nobody.kubeconfig kubectl config set-context --current --user nobody >/dev/null
  expect "RBAC forbidden: names verb and resource" 1 \
    "may not list branches.pgbranch.io in namespace default" \
    pgbranch --kubeconfig "$CLI_TMP/nobody.kubeconfig" branch list
else
  fail "RBAC forbidden: kubectl create token failed" ""
fi

# Another namespace: -n (empty there).
kubectl create namespace other >/dev/null
expect "-n other: an empty list" 0 "NAME" kpgb -n other branch list
[[ $OUT != *main* ]] && pass "-n other: main is not there" || fail "-n other: main is not there" "$OUT"

# ---- Promotion (docs/promotion.md): dev's schema change into main, as a resource ------------
# dev's DDL is captured as it runs; the operator rehearses it on a copy of main's head, takes a
# restore point of main, then applies it to main through main's compute pod.
q "$DEV" "alter table t add column score int not null default 0; create index t_score on t (score)" >/dev/null
q "$MAIN" "insert into t values (3, 'main after dev branched')" >/dev/null
cat >"$CLI_TMP/promotion.yaml" <<YAML
apiVersion: pgbranch.io/v1alpha1
kind: Promotion
metadata: {name: dev-score}
spec:
  branch: dev
  checks:
    - name: score-column
      sql: select count(*) = 1 from information_schema.columns where table_name = 't' and column_name = 'score'
  restorePoint: {ttl: 2h}
YAML
t=$(now_ms)
expect "kubectl apply Promotion dev-score" 0 "promotion.pgbranch.io/dev-score created" \
  kubectl apply -f "$CLI_TMP/promotion.yaml"
promotion_phase() { kubectl get promotion "$1" -o jsonpath='{.status.phase}'; }
check "Promotion dev-score Succeeded" 300 \
  bash -c "[[ \$(kubectl get promotion dev-score -o jsonpath='{.status.phase}') == Succeeded ]]"
echo "      Promotion to Succeeded: $(( $(now_ms) - t )) ms"
RP=$(kubectl get promotion dev-score -o jsonpath='{.status.restorePoint}')
expect "status: 2 statements applied, a restore point, how to roll back" 0 "2 $RP" \
  kubectl get promotion dev-score -o jsonpath='{.status.appliedStatements} {.status.restorePoint}'
[[ -n $RP ]] && pass "status.restorePoint is set ($RP)" || fail "status.restorePoint is set" "$OUT"
expect "kubectl get promotions: printer columns" 0 "Succeeded" kubectl get promotions
[[ $OUT == *BRANCH*PARENT*PHASE*STATEMENTS*"RESTORE POINT"* && $OUT == *dev-score*dev*main* ]] &&
  pass "kubectl get promotions: columns" || fail "kubectl get promotions: columns" "$OUT"
expect "main has the promoted column, its rows kept" 0 "0|2" \
  q "$MAIN" "select sum(score), count(*) from t"
expect "main has the promoted index" 0 "t_score" \
  q "$MAIN" "select indexname from pg_indexes where tablename = 't' and indexname = 't_score'"
expect "the restore point is a Ready child of main, labelled" 0 "main Ready main" \
  kubectl get branches.pgbranch.io "$RP" \
  -o jsonpath='{.spec.parent} {.status.phase} {.metadata.labels.pgbranch\.io/restore-point-of}'
# Its deletion was asked for before the apply; the operator's finalizer removes it once the
# pageserver dropped its timeline, which may come after the Promotion reached Succeeded.
check "the rehearsal branch is gone" 60 \
  bash -c "[[ -z \$(kubectl get branches.pgbranch.io -l pgbranch.io/promotion=dev-score -o name | grep rehearsal) ]]"
expect "a read-only endpoint on the restore point" 0 "is running" \
  pgb endpoint create rp-ro --branch "$RP" --type read-only
# The restore point never had a read-write endpoint: its role's password is main's (its data
# is main's), not the one rp-ro's Secret holds; log in with main's.
MAINPW=$(sed -E 's#^postgresql://[^:]+:([^@]+)@.*#\1#' <<<"$MAIN")
RPURI=$(pgb connstr rp-ro | sed -E "s#^(postgresql://[^:]+:)[^@]+@#\1$MAINPW@#")
expect "the restore point holds main as it was: no score column, main's rows" 0 "0|2" \
  q "$RPURI" "select count(*) filter (where column_name = 'score'), (select count(*) from t) from information_schema.columns where table_name = 't'"
expect "endpoint delete rp-ro" 0 'endpoint "rp-ro" deleted' pgb endpoint delete rp-ro
expect "Promoted event on the Promotion" 0 "Promoted" \
  kubectl get events --field-selector involvedObject.kind=Promotion,involvedObject.name=dev-score

# A migration that fails in the rehearsal: Failed, main untouched, no restore point.
kubectl apply -f - >/dev/null <<YAML
apiVersion: pgbranch.io/v1alpha1
kind: Promotion
metadata: {name: dev-broken}
spec:
  branch: dev
  migration: {sql: "alter table t add column score int"}
YAML
check "Promotion dev-broken Failed" 300 \
  bash -c "[[ \$(kubectl get promotion dev-broken -o jsonpath='{.status.phase}') == Failed ]]"
expect "dev-broken: the failing statement and main untouched" 0 "main is untouched" \
  kubectl get promotion dev-broken -o jsonpath='{.status.message}'
[[ $OUT == *'column "score" of relation "t" already exists'* ]] &&
  pass "dev-broken: the server's error" || fail "dev-broken: the server's error" "$OUT"
expect "dev-broken: no restore point" 0 "" \
  bash -c "[[ -z \$(kubectl get promotion dev-broken -o jsonpath='{.status.restorePoint}') ]]"

# Bad manifests: refused by the API server with the CRD's messages, nothing created.
expect "bad Promotion: sql and configMapRef both" 1 "exactly one of sql" \
  bash -c "printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Promotion\nmetadata: {name: bad}\nspec: {branch: dev, migration: {sql: select 1, configMapRef: {name: m, key: k}}}\n' | kubectl apply -f -"
expect "bad Promotion: no branch" 1 "spec.branch: Required value" \
  bash -c "printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Promotion\nmetadata: {name: bad}\nspec: {allowProtected: true}\n' | kubectl apply -f -"
expect "bad Promotion: ttl and keep" 1 "ttl and keep: true exclude each other" \
  bash -c "printf 'apiVersion: pgbranch.io/v1alpha1\nkind: Promotion\nmetadata: {name: bad}\nspec: {branch: dev, restorePoint: {ttl: 1h, keep: true}}\n' | kubectl apply -f -"
expect "a Promotion's spec cannot change" 1 "cannot change after creation" \
  kubectl patch promotion dev-score --type merge -p '{"spec":{"branch":"main"}}'
expect "bad Promotions: nothing created" 1 'promotions.pgbranch.io "bad" not found' \
  kubectl get promotion bad

# Rolling back: main's data back to the restore point, under the same connection string; what
# main was becomes branch main-promoted (main, a root, is restored: the policy lets a restore
# raise a root's resetGeneration).
expect "branch restore main --to the restore point" 0 "restored to $RP" \
  pgb branch restore main --to "$RP" --keep-current-as main-promoted
expect "main after the restore: no score column, main's rows, same connection string" 0 "0|2" \
  q "$MAIN" "select count(*) filter (where column_name = 'score'), (select count(*) from t) from information_schema.columns where table_name = 't'"
expect "main-promoted keeps main as it was promoted" 0 "Ready" \
  kubectl get branches.pgbranch.io main-promoted -o jsonpath='{.status.phase}'
expect "a plain reset of the root main is refused" 1 "only a child can be reset" pgb branch reset main

# Cleanup: the Promotions are records (deleting them keeps the restore point); the restore
# point is main's child until deleted.
expect "delete the Promotions" 0 "deleted" kubectl delete promotion dev-score dev-broken
expect "the restore point outlives its Promotion" 0 "$RP" kubectl get branches.pgbranch.io "$RP" -o name
expect "branch delete the restore point" 0 "deleted" pgb branch delete "$RP"

# ---- deletes ---------------------------------------------------------------------------------
expect "branch delete feature (with its endpoint)" 0 'branch "feature" deleted' pgb branch delete feature
expect "branch delete dev -o json" 0 "dev" \
  bash -c "pgbranch --kube -o json branch delete dev | python3 -c 'import json,sys; d=json.load(sys.stdin)[\"deleted\"]; assert d[\"endpoints\"] == [\"dev\"], d; print(d[\"name\"])'"
check "dev's endpoint is gone too" 60 bash -c "! kubectl get endpoints.pgbranch.io dev >/dev/null 2>&1"
expect "branch delete main" 0 'branch "main" deleted' kpgb branch delete main
expect "branch delete main-promoted (main's data was built on it)" 0 'branch "main-promoted" deleted' \
  pgb branch delete main-promoted
expect "nothing left" 0 "" bash -c "[[ -z \$(kubectl get branches.pgbranch.io,endpoints.pgbranch.io -o name) ]]"

# ---- pgbranch not installed ------------------------------------------------------------------
kubectl delete --wait -f "$E2E_ROOT/crds/" >/dev/null 2>&1
expect "CRDs missing: says to install pgbranch" 1 "the CRDs are missing" kpgb branch list
[[ $OUT == *"docs/install.md"* ]] && pass "CRDs missing: points at docs/install.md" ||
  fail "CRDs missing: points at docs/install.md" "$OUT"
