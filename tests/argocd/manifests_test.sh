#!/usr/bin/env bash
# Tier 3: deploy/argocd against the real schemas on a real kube-apiserver (its own cluster from
# scripts/k8s/cluster.sh, API server only): Argo CD's own CRDs (fetched from the Go module proxy,
# tests/argocd/fetch-argocd.sh) and pgbranch's. Checks, one PASS/FAIL line each:
#  - application.yaml, applicationset-pull-requests.yaml and the Application the ApplicationSet
#    makes for a pull request pass `kubectl apply --dry-run=server --validate=strict`, and a
#    misspelt field does not (the validation is real);
#  - the per-PR chart (deploy/argocd/pr-branch, rendered by helm with the values that
#    Application carries) makes Branch pr-12 and Endpoint pr-12 the API server accepts; bad
#    values fail with a readable message;
#  - helm/pgbranch rendered with application.yaml's values is accepted, and holds the token
#    Secret that ignoreDifferences names;
#  - argocd-cm-health.yaml merges into an argocd-cm ConfigMap;
#  - with pgbranch-operator and pgbranch-pageserver in PGBRANCH_BIN_DIR: the per-PR objects for
#    real, and the health checks on what the operator wrote (Healthy branch, Progressing
#    endpoint without a kubelet, Degraded point-in-time branch and Conflict endpoint), then the
#    pull request "closed" (the objects deleted as Argo CD's finalizer does): branch, endpoint
#    and timeline gone.
# Exits 77 when Argo CD's CRDs cannot be fetched; non-zero if any check fails.
set -uo pipefail

ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN=${PGBRANCH_BIN_DIR:-$ROOT/build/bin}
CLUSTER=$ROOT/scripts/k8s/cluster.sh
HERE=$ROOT/tests/argocd
ARGO=$ROOT/deploy/argocd
# shellcheck source-path=SCRIPTDIR source=../k8s/lib/checks.sh
source "$ROOT/tests/k8s/lib/checks.sh"

crds_out=$(bash "$HERE/fetch-argocd.sh")
rc=$?
if (( rc == 77 )); then
  echo "SKIP: Argo CD's CRDs cannot be fetched (see above)"
  exit 77
fi
(( rc == 0 )) || { echo "FAIL  fetch Argo CD's CRDs"; exit 1; }
ARGO_CRDS=$(tail -n1 <<<"$crds_out")/crds

export PGBRANCH_K8S_DIR=${PGBRANCH_K8S_TEST_DIR:-/tmp/pgbranch-k8s-argocd.$$}
PGBRANCH_K8S_PORT=$(free_port)
export PGBRANCH_K8S_PORT
WORK=$(mktemp -d /tmp/pgbranch-argocd-test.XXXXXX)
PS_PORT=$(free_port)
unset KUBECONFIG
OP_PID="" PS_PID=""

cleanup() {
  local rc=$?
  if (( failed > 0 )); then
    for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "---- $(basename "$f") (last 30 lines)"; tail -n 30 "$f"; }; done
  fi
  for p in $OP_PID $PS_PID; do kill -TERM "$p" 2>/dev/null; done
  for p in $OP_PID $PS_PID; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  done
  bash "$CLUSTER" down >/dev/null 2>&1 || true
  rm -rf "$WORK" "$PGBRANCH_K8S_DIR.lock"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== cluster (state $PGBRANCH_K8S_DIR, port $PGBRANCH_K8S_PORT; Argo CD CRDs from $ARGO_CRDS)"
bash "$CLUSTER" up || { echo "FAIL  cluster up"; exit 1; }
# shellcheck disable=SC1091
source "$PGBRANCH_K8S_DIR/env.sh"
k() { kubectl --request-timeout=30s "$@"; }
dry() { k apply --server-side --dry-run=server --validate=strict "$@"; }
# expect_rejected NAME PATTERN COMMAND...: COMMAND fails and its output matches PATTERN.
expect_rejected() {
  local name=$1 pattern=$2 out; shift 2
  if out=$("$@" 2>&1); then
    fail "$name" "accepted: $out"
  elif grep -Eq -- "$pattern" <<<"$out"; then
    pass "$name"
  else
    fail "$name" "rejected, but without /$pattern/: $out"
  fi
}

echo "== CRDs"
if out=$(k apply --server-side -f "$ROOT/crds/" -f "$ARGO_CRDS/" 2>&1); then pass "pgbranch and Argo CD CRDs apply"; else fail "pgbranch and Argo CD CRDs apply" "$out"; fi
# kubectl wait gives up at once on a CRD that has no conditions yet (the 1.4 MB ApplicationSet
# CRD takes a moment): ask again until all are Established.
established() {
  kubectl --request-timeout=30s wait --for condition=Established --timeout=5s crd/branches.pgbranch.io \
    crd/endpoints.pgbranch.io crd/applications.argoproj.io crd/applicationsets.argoproj.io crd/appprojects.argoproj.io
}
check "CRDs Established" 120 established || exit 1
k create namespace argocd >/dev/null
k create namespace shop >/dev/null
k create namespace pgbranch-system >/dev/null

echo "== Application and ApplicationSet against Argo CD's CRDs"
if out=$(dry -f "$ARGO/application.yaml" 2>&1); then pass "application.yaml"; else fail "application.yaml" "$out"; fi
if out=$(dry -f "$ARGO/applicationset-pull-requests.yaml" 2>&1); then pass "applicationset-pull-requests.yaml"; else fail "applicationset-pull-requests.yaml" "$out"; fi
sed 's/^    syncOptions:/    syncOption:/' "$ARGO/application.yaml" >"$WORK/bad-application.yaml"
expect_rejected "a misspelt Application field is refused" 'spec.syncPolicy.syncOption: field not declared in schema' dry -f "$WORK/bad-application.yaml"
sed 's/^          labels: \[\]/          label: []/' "$ARGO/applicationset-pull-requests.yaml" >"$WORK/bad-appset.yaml"
expect_rejected "a misspelt generator field is refused" 'spec.generators\[0\].pullRequest.github.label: field not declared in schema' dry -f "$WORK/bad-appset.yaml"
SHA=4f2a9c1e0b7d3a5f6e8c9b0a1d2e3f4a5b6c7d8e
if python3 "$HERE/render_applicationset.py" "$ARGO/applicationset-pull-requests.yaml" 12 "$SHA" feature/cart-v2 \
  namespace=shop >"$WORK/pr-12-application.yaml" 2>"$WORK/render.err"; then
  pass "the ApplicationSet's template renders for pull request 12"
else
  fail "the ApplicationSet's template renders for pull request 12" "$(cat "$WORK/render.err")"
fi
if out=$(dry -f "$WORK/pr-12-application.yaml" 2>&1); then pass "the rendered Application pgbranch-pr-12"; else fail "the rendered Application pgbranch-pr-12" "$out"; fi
out=$(python3 - "$WORK/pr-12-application.yaml" <<'PY'
import sys, yaml
app = yaml.safe_load(open(sys.argv[1]))
problems = []
if app["metadata"]["name"] != "pgbranch-pr-12": problems.append("name " + app["metadata"]["name"])
if "resources-finalizer.argocd.argoproj.io" not in app["metadata"].get("finalizers", []):
    problems.append("no resources finalizer: closing the PR would leave the branch behind")
if app["spec"]["source"]["path"] != "deploy/argocd/pr-branch": problems.append("path")
if app["spec"]["destination"]["namespace"] != "shop": problems.append("namespace")
print("\n".join(problems) or "ok")
PY
)
if [[ $out == ok ]]; then pass "pgbranch-pr-12: name, resources finalizer, path, namespace"; else fail "pgbranch-pr-12: name, resources finalizer, path, namespace" "$out"; fi

# The GitLab and Gitea generators docs/gitops.md shows, in the ApplicationSet in place of GitHub's.
merge_generators='
import sys, textwrap, yaml
appset = yaml.safe_load(open(sys.argv[1]))
appset["spec"]["generators"] = yaml.safe_load(textwrap.dedent(sys.stdin.read()))["generators"]
yaml.safe_dump(appset, sys.stdout, sort_keys=False)'
n=0
while IFS= read -r -d '' fragment; do
  n=$((n + 1))
  if out=$(python3 -c "$merge_generators" "$ARGO/applicationset-pull-requests.yaml" \
    <<<"$fragment" 2>&1 >"$WORK/appset-doc-$n.yaml") && out=$(dry -f "$WORK/appset-doc-$n.yaml" 2>&1); then
    pass "docs/gitops.md generator $n ($(grep -Eo 'gitlab|gitea' <<<"$fragment" | head -n1)) passes the ApplicationSet CRD"
  else
    fail "docs/gitops.md generator $n passes the ApplicationSet CRD" "$out"
  fi
done < <(awk '
  /^### / { active = index($0, "GitLab and Gitea") > 0; next }
  /^## / { active = 0 }
  /^```yaml$/ && active { inblock = 1; body = ""; next }
  /^```/ && inblock { inblock = 0; printf "%s%c", body, 0; next }
  inblock { body = body $0 "\n" }
' "$ROOT/docs/gitops.md")
if (( n == 2 )); then
  pass "docs/gitops.md shows the GitLab and Gitea generators"
else
  fail "docs/gitops.md shows the GitLab and Gitea generators" "found $n"
fi

echo "== the argocd-cm snippet"
k -n argocd create configmap argocd-cm --from-literal=url=https://argocd.example.com >/dev/null
if out=$(k -n argocd patch configmap argocd-cm --type merge --patch-file "$ARGO/argocd-cm-health.yaml" 2>&1); then
  pass "argocd-cm-health.yaml merges into argocd-cm"
else
  fail "argocd-cm-health.yaml merges into argocd-cm" "$out"
fi
out=$(k -n argocd get configmap argocd-cm -o json | python3 -c '
import json, sys
data = json.load(sys.stdin)["data"]
root = sys.argv[1]
ok = data.get("url") == "https://argocd.example.com"
for kind in ("Branch", "Endpoint"):
    ok = ok and data.get("resource.customizations.health.pgbranch.io_" + kind) == open(
        root + "/deploy/argocd/health/pgbranch.io/" + kind + "/health.lua").read()
print("ok" if ok else sorted(data))' "$ROOT" 2>&1)
if [[ $out == ok ]]; then pass "argocd-cm holds both scripts byte for byte and keeps its other keys"; else fail "argocd-cm holds both scripts byte for byte and keeps its other keys" "$out"; fi

echo "== the per-PR chart"
values_of() {  # values_of APPLICATION_YAML: its spec.source.helm.valuesObject as YAML
  python3 -c 'import sys, yaml; yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["spec"]["source"]["helm"]["valuesObject"], sys.stdout)' "$1"
}
if ! command -v helm >/dev/null; then
  fail "helm on PATH (scripts/k8s/build-k8s.sh builds it)"
else
  values_of "$WORK/pr-12-application.yaml" >"$WORK/pr-12-values.yaml"
  if out=$(helm template pr-12 "$ARGO/pr-branch" -n shop -f "$WORK/pr-12-values.yaml" 2>&1); then
    printf '%s\n' "$out" >"$WORK/pr-12.yaml"
    pass "helm template with the Application's values"
  else
    fail "helm template with the Application's values" "$out"
  fi
  out=$(python3 - "$WORK/pr-12.yaml" "$SHA" <<'PY'
import sys, yaml
objs = {o["kind"]: o for o in yaml.safe_load_all(open(sys.argv[1])) if o}
b, e = objs.get("Branch"), objs.get("Endpoint")
want = [
    (sorted(objs), ["Branch", "Endpoint"]),
    (b["metadata"]["name"], "pr-12"), (b["spec"], {"parent": "main", "ttl": "72h"}),
    (e["metadata"]["name"], "pr-12"), (e["spec"]["branch"], "pr-12"),
    (e["spec"]["type"], "ReadWrite"), (e["spec"]["suspendTimeout"], "15m"),
    (b["metadata"]["labels"]["pgbranch.io/pull-request"], "12"),
    (b["metadata"]["annotations"]["pgbranch.io/git-commit"], sys.argv[2]),
]
print("\n".join("%r != %r" % (got, exp) for got, exp in want if got != exp) or "ok")
PY
)
  if [[ $out == ok ]]; then pass "Branch pr-12 (parent main, ttl 72h) and Endpoint pr-12"; else fail "Branch pr-12 (parent main, ttl 72h) and Endpoint pr-12" "$out"; fi
  if out=$(dry -n shop -f "$WORK/pr-12.yaml" 2>&1); then pass "Branch and Endpoint pass the pgbranch CRDs (schema and CEL)"; else fail "Branch and Endpoint pass the pgbranch CRDs (schema and CEL)" "$out"; fi
  expect_rejected "no pull request number: a readable error" "pullRequest.number is required" \
    helm template pr "$ARGO/pr-branch" -n shop
  expect_rejected "a TTL that is not a duration is refused" "branch/ttl.*does not match pattern" \
    helm template pr "$ARGO/pr-branch" -n shop --set pullRequest.number=7 --set "branch.ttl=3 days"
  expect_rejected "an endpoint name must start with a letter" "/namePrefix.*does not match pattern" \
    helm template pr "$ARGO/pr-branch" -n shop --set pullRequest.number=7 --set namePrefix=7-
  if out=$(helm template pr "$ARGO/pr-branch" -n shop --set pullRequest.number=7 --set branch.historyWindow=24h \
    --set endpoint.resources.cpu=500m --set-string endpoint.postgresParameters.max_connections=50 2>&1) &&
    out=$(dry -n shop -f - <<<"$out" 2>&1); then
    pass "optional values (historyWindow, resources, postgresParameters) render and pass the CRDs"
  else
    fail "optional values (historyWindow, resources, postgresParameters) render and pass the CRDs" "$out"
  fi

  echo "== helm/pgbranch with application.yaml's values"
  values_of "$ARGO/application.yaml" >"$WORK/pgbranch-values.yaml"
  if out=$(helm template pgbranch "$ROOT/helm/pgbranch" -n pgbranch-system -f "$WORK/pgbranch-values.yaml" 2>&1); then
    printf '%s\n' "$out" >"$WORK/pgbranch.yaml"
    pass "helm template helm/pgbranch with the Application's values"
    if out=$(dry -f "$WORK/pgbranch.yaml" 2>&1); then pass "the chart's objects pass the API server"; else fail "the chart's objects pass the API server" "$out"; fi
    out=$(python3 - "$WORK/pgbranch.yaml" "$ARGO/application.yaml" <<'PY'
import sys, yaml
objs = [o for o in yaml.safe_load_all(open(sys.argv[1])) if o]
app = yaml.safe_load(open(sys.argv[2]))
problems = []
for ig in app["spec"]["ignoreDifferences"]:
    match = [o for o in objs if o["kind"] == ig["kind"] and o["metadata"]["name"] == ig["name"]
             and o["metadata"].get("namespace", app["spec"]["destination"]["namespace"]) == ig["namespace"]]
    if not match:
        problems.append("ignoreDifferences names %s %s/%s, which the chart does not make"
                        % (ig["kind"], ig["namespace"], ig["name"]))
        continue
    keep = match[0]["metadata"].get("annotations", {}).get("helm.sh/resource-policy")
    if keep != "keep":
        problems.append("%s has no helm.sh/resource-policy: keep" % ig["name"])
for o in objs:
    if o["kind"] == "CustomResourceDefinition" and \
            o["metadata"].get("annotations", {}).get("helm.sh/resource-policy") != "keep":
        problems.append("CRD %s has no helm.sh/resource-policy: keep" % o["metadata"]["name"])
print("\n".join(problems) or "ok")
PY
)
    if [[ $out == ok ]]; then pass "the token Secret ignoreDifferences names exists; it and the CRDs are kept (Delete=false)"; else fail "the token Secret ignoreDifferences names exists; it and the CRDs are kept (Delete=false)" "$out"; fi
  else
    fail "helm template helm/pgbranch with the Application's values" "$out"
  fi
fi

echo "== real objects: the operator writes status, the health checks read it"
health() {  # health KIND NAME: "<status>: <message>" of the live object
  k -n shop get "$1" "$2" -o yaml | python3 "$HERE/run_health_tests.py" --eval - | sed 's/^[^:]*: //'
}
health_is() {  # health_is KIND NAME STATUS MESSAGE-GLOB
  local got
  got=$(health "$1" "$2")
  # shellcheck disable=SC2053
  [[ $got == "$3: "$4 ]] || { echo "got: $got"; return 1; }
}
if [[ ! -x $BIN/pgbranch-operator || ! -x $BIN/pgbranch-pageserver || ! -f $WORK/pr-12.yaml ]]; then
  echo "      (skipped: needs helm and $BIN/pgbranch-operator, $BIN/pgbranch-pageserver)"
else
  "$BIN/pgbranch-pageserver" --data-dir "$WORK/pageserver" --listen "127.0.0.1:$PS_PORT" >"$WORK/pageserver.log" 2>&1 &
  PS_PID=$!
  setsid "$BIN/pgbranch-operator" --kubeconfig "$KUBECONFIG" --pageserver "127.0.0.1:$PS_PORT" \
    --listen "127.0.0.1:0" --identity argocd-test --lease-namespace default --namespaces shop \
    >"$WORK/operator.log" 2>&1 &
  OP_PID=$!
  k -n shop apply -f - >/dev/null <<'YAML'
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: main}
spec: {noExpiry: true}
YAML
  if out=$(k -n shop apply --server-side -f "$WORK/pr-12.yaml" 2>&1); then pass "Branch pr-12 and Endpoint pr-12 created"; else fail "Branch pr-12 and Endpoint pr-12 created" "$out"; fi
  UID12=$(k -n shop get branch pr-12 -o jsonpath='{.metadata.uid}')
  check "Branch pr-12: Healthy (Ready, current generation, expiry shown)" 60 \
    health_is branch pr-12 Healthy "Ready: timeline $UID12 of tenant shop; expires at *"
  # No kubelet here: the compute pod stays Pending, so the endpoint stays Starting.
  check "Endpoint pr-12 without a kubelet: Progressing (Starting)" 60 \
    health_is endpoint.pgbranch.io pr-12 Progressing "Starting: starting PostgreSQL"
  k -n shop patch branch pr-12 --type merge -p '{"spec":{"ttl":"96h"}}' >/dev/null
  check "after a spec change the branch is Healthy again for the new generation" 60 \
    bash -c "$(declare -f k health health_is); HERE=$HERE; health_is branch pr-12 Healthy '*' && [[ \$(kubectl -n shop get branch pr-12 -o jsonpath='{.status.observedGeneration}') == 2 ]]"
  k -n shop apply -f - >/dev/null <<'YAML'
apiVersion: pgbranch.io/v1alpha1
kind: Branch
metadata: {name: pr-13}
spec: {parent: main, ttl: 72h, timestamp: "2001-01-01T00:00:00Z"}
---
apiVersion: pgbranch.io/v1alpha1
kind: Endpoint
metadata: {name: pr-12-second}
spec: {branch: pr-12}
YAML
  check "a branch from before its parent's history: Degraded (StartPointOutOfRange)" 60 \
    health_is branch pr-13 Degraded "StartPointOutOfRange: spec.timestamp: *"
  check "a second read-write endpoint: Degraded (Conflict)" 60 \
    health_is endpoint.pgbranch.io pr-12-second Degraded "Conflict: branch pr-12 already has the read-write endpoint pr-12*"
  # docs/gitops.md's one-liner (a List of both kinds), in this namespace.
  out=$(k -n shop get branch,endpoint.pgbranch.io -o yaml | python3 "$HERE/run_health_tests.py" --eval - 2>&1)
  if [[ $(wc -l <<<"$out") -eq 5 && $out == *"Branch/pr-12: Healthy: "* && $out == *"Branch/pr-13: Degraded: "* &&
    $out == *"Endpoint/pr-12: Progressing: "* && $out == *"Endpoint/pr-12-second: Degraded: "* ]]; then
    pass "run_health_tests.py --eval on kubectl's List: one line per object"
  else
    fail "run_health_tests.py --eval on kubectl's List: one line per object" "$out"
  fi
  if [[ -n ${PGBRANCH_ARGOCD_CAPTURE:-} ]]; then
    mkdir -p "$PGBRANCH_ARGOCD_CAPTURE"
    for o in branch/pr-12 branch/pr-13 endpoint.pgbranch.io/pr-12 endpoint.pgbranch.io/pr-12-second; do
      k -n shop get "$o" -o yaml >"$PGBRANCH_ARGOCD_CAPTURE/$(tr '/.' '--' <<<"$o").yaml"
    done
    echo "      (captured the live objects into $PGBRANCH_ARGOCD_CAPTURE)"
  fi
  # The pull request closes: Argo CD's resources finalizer deletes the Application's objects.
  k -n shop delete endpoint.pgbranch.io pr-12-second --wait=false >/dev/null
  k -n shop delete -f "$WORK/pr-12.yaml" --wait=false >/dev/null
  check "while being deleted the branch reports Progressing or is gone" 30 \
    bash -c "$(declare -f k health health_is); HERE=$HERE; ! kubectl -n shop get branch pr-12 >/dev/null 2>&1 || health_is branch pr-12 Progressing 'Being deleted*'"
  check "PR closed: Branch and Endpoint pr-12 gone" 60 \
    bash -c "! kubectl -n shop get branch pr-12 >/dev/null 2>&1 && ! kubectl -n shop get endpoint.pgbranch.io pr-12 >/dev/null 2>&1"
  check "PR closed: the operator deleted timeline $UID12" 10 grep -q "Deleted branch.*$UID12" "$WORK/operator.log"
  check "the parent branch main is untouched" 5 health_is branch main Healthy "Ready: *"

  echo "== docs/gitops.md: the CI blocks, as written"
  # The sh blocks of the CI section that are not marked <!-- not run -->, in one shell.
  awk '
    /^## / { active = index($0, "Throwaway branches in CI") > 0; next }
    /^<!-- not run:/ { skip = 1; next }
    /^```sh$/ && active { inblock = 1; next }
    /^```/ && inblock { inblock = 0; if (!skip) printf "%s", body; body = ""; skip = 0; next }
    /^```/ { skip = 0 }
    inblock { body = body $0 "\n" }
  ' "$ROOT/docs/gitops.md" >"$WORK/ci-blocks.sh"
  if [[ $(grep -c 'kubectl' "$WORK/ci-blocks.sh") -lt 4 ]]; then
    fail "the CI blocks of docs/gitops.md found" "$(cat "$WORK/ci-blocks.sh")"
  elif out=$(NS=shop CI_PIPELINE_ID=4711 bash -euo pipefail "$WORK/ci-blocks.sh" 2>&1); then
    pass "docs/gitops.md CI blocks: branch ci-4711 created, Ready, deleted with its endpoint"
  else
    fail "docs/gitops.md CI blocks: branch ci-4711 created, Ready, deleted with its endpoint" "$out"
  fi
fi

checks_summary "Argo CD manifests"
