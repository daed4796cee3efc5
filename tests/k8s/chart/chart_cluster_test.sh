#!/usr/bin/env bash
# The chart against a real kube-apiserver (tier 3, no node: pods stay Pending):
#  1. helm install / upgrade / uninstall / install again: the token Secret's key is generated
#     once and survives upgrade, uninstall and re-install (lookup + resource-policy keep); the
#     CRDs and the pageserver's PersistentVolumeClaim survive uninstall; upgrade applies changed
#     values and CRD changes.
#  2. Every values file under values/ renders manifests the API server accepts:
#     kubectl apply --dry-run=server --validate=strict (Kubernetes schemas, the CRDs' schemas and
#     CEL, admission). PodMonitor/ServiceMonitor are left out here (no Prometheus-operator CRDs
#     in the test cluster; chart_static_test.sh checks their fields and selectors).
#  3. deploy/install.yaml and the kustomize base and overlay: the same server-side validation.
#  4. deploy/samples/*.yaml: server dry-run, then really applied (the CRDs are installed).
# One PASS/FAIL line per check. Exit 77 without helm.
set -uo pipefail
# shellcheck source=tests/k8s/chart/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CLUSTER=$ROOT/scripts/k8s/cluster.sh
export PGBRANCH_K8S_DIR=${PGBRANCH_K8S_TEST_DIR:-/tmp/pgbranch-k8s-chart.$$}
PGBRANCH_K8S_PORT=$(free_port)
export PGBRANCH_K8S_PORT
[[ -x $K8S_BIN/kube-apiserver ]] && export PGBRANCH_K8S_BIN=$K8S_BIN
unset KUBECONFIG
WORK=$(mktemp -d)

cleanup() {
  local rc=$?
  bash "$CLUSTER" down >/dev/null 2>&1 || true
  rm -f "$PGBRANCH_K8S_DIR.lock"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== cluster (state $PGBRANCH_K8S_DIR, port $PGBRANCH_K8S_PORT)"
if ! bash "$CLUSTER" up >"$WORK/up.log" 2>&1; then
  echo "FAIL  cluster up"
  tail -n 20 "$WORK/up.log"
  exit 1
fi
# shellcheck disable=SC1091
source "$PGBRANCH_K8S_DIR/env.sh"
k() { kubectl --request-timeout=60s "$@"; }
# dry_run FILE: server-side validation; prints the API server's errors (kubectl's warnings about
# objects helm created without last-applied annotations are noise here).
dry_run() { k apply --dry-run=server --validate=strict -f "$1" 2>&1 | grep -v '^Warning: resource .* is missing the kubectl.kubernetes.io/last-applied-configuration'; return "${PIPESTATUS[0]}"; }
NS=pgbranch-system
secret_key() { k -n $NS get secret pgbranch-pageserver-token -o jsonpath='{.data.signing-key}' 2>/dev/null; }

echo "== helm install / upgrade / uninstall"
if out=$(helm install pgbranch "$CHART" -n $NS --create-namespace -f "$VALUES/tier5.yaml" 2>&1); then pass "helm install"; else fail "helm install" "$out"; fi
if [[ $out == *"kubectl pgbranch -n default connstr main"* && $out == *"get secret main-credentials"* && $out == *"get no ingress NetworkPolicy"* ]]; then
  pass "helm install prints NOTES (first branch, endpoint, connection string; the open computes)"
else
  fail "helm install prints NOTES" "$out"
fi
key1=$(secret_key)
if [[ ${#key1} -ge 64 ]]; then pass "token Secret generated"; else fail "token Secret generated" "key: '$key1'"; fi
check "CRDs Established" 60 k wait --for condition=Established --timeout=5s crd/branches.pgbranch.io crd/endpoints.pgbranch.io
check "pageserver PVC created by the StatefulSet" 60 k -n $NS get pvc data-pgbranch-pageserver-0
if out=$(helm upgrade pgbranch "$CHART" -n $NS -f "$VALUES/tier5.yaml" --set operator.logLevel=debug --set compute.suspendTimeout=7m 2>&1); then pass "helm upgrade with changed values"; else fail "helm upgrade with changed values" "$out"; fi
if [[ $(secret_key) == "$key1" ]]; then pass "upgrade keeps the token key"; else fail "upgrade keeps the token key"; fi
out=$(k -n $NS get deploy pgbranch-operator -o jsonpath='{.spec.template.spec.containers[0].args}')
if [[ $out == *'"--log-level","debug"'* ]]; then pass "upgrade changed the operator's flags"; else fail "upgrade changed the operator's flags" "$out"; fi
out=$(k get crd endpoints.pgbranch.io -o jsonpath='{.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.suspendTimeout.default}')
if [[ $out == 7m ]]; then pass "upgrade updated the CRD (suspendTimeout default 7m)"; else fail "upgrade updated the CRD" "default: $out"; fi
if out=$(helm uninstall pgbranch -n $NS --wait 2>&1); then pass "helm uninstall"; else fail "helm uninstall" "$out"; fi
if k get crd branches.pgbranch.io endpoints.pgbranch.io >/dev/null 2>&1; then pass "uninstall keeps the CRDs"; else fail "uninstall keeps the CRDs"; fi
if k get validatingadmissionpolicy,validatingadmissionpolicybinding pgbranch-protected-branches >/dev/null 2>&1; then pass "uninstall keeps the protected-branch policy"; else fail "uninstall keeps the protected-branch policy"; fi
if [[ $(secret_key) == "$key1" ]]; then pass "uninstall keeps the token Secret"; else fail "uninstall keeps the token Secret"; fi
if k -n $NS get pvc data-pgbranch-pageserver-0 >/dev/null 2>&1; then pass "uninstall keeps the pageserver PVC"; else fail "uninstall keeps the pageserver PVC"; fi
out=$(k -n $NS get deploy,statefulset,service -o name 2>&1)
if [[ -z $out ]]; then pass "uninstall removes the workloads"; else fail "uninstall removes the workloads" "$out"; fi
if out=$(helm install pgbranch "$CHART" -n $NS -f "$VALUES/tier5.yaml" 2>&1); then pass "helm install again (adopts the kept CRDs and Secret)"; else fail "helm install again" "$out"; fi
if [[ $(secret_key) == "$key1" ]]; then pass "re-install reuses the kept token key"; else fail "re-install reuses the kept token key"; fi
# The validation below dry-runs other values into the same namespace: a live StatefulSet would
# turn them into (refused) updates of immutable fields.
if out=$(helm uninstall pgbranch -n $NS --wait 2>&1); then pass "helm uninstall again"; else fail "helm uninstall again" "$out"; fi

echo "== server-side validation of every values file"
for ns in team-a team-b; do k create namespace $ns >/dev/null 2>&1; done
for f in "$VALUES"/*.yaml; do
  n=$(basename "$f" .yaml)
  render -f "$f" >"$WORK/$n.yaml" 2>&1 || { fail "render $n" "$(cat "$WORK/$n.yaml")"; continue; }
  python3 - "$WORK/$n.yaml" <<'PY' >"$WORK/$n.k8s.yaml"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
print(yaml.safe_dump_all([d for d in docs if d["kind"] not in ("PodMonitor", "ServiceMonitor")]))
PY
  if out=$(dry_run "$WORK/$n.k8s.yaml"); then
    pass "values $n: $(grep -c 'server dry run' <<<"$out") objects accepted"
  else
    fail "values $n accepted by the API server" "$(grep -v '(server dry run)$' <<<"$out")"
  fi
done

echo "== deploy/"
# install.yaml's Namespace enforces the restricted Pod Security Standard: Pod Security admission
# warns about any workload whose pods it would refuse there.
k label namespace $NS pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
if out=$(dry_run "$ROOT/deploy/install.yaml"); then pass "install.yaml accepted ($(grep -c 'server dry run' <<<"$out") objects)"; else fail "install.yaml accepted" "$(grep -v '(server dry run)$' <<<"$out")"; fi
if grep -q 'PodSecurity' <<<"$out"; then fail "operator, pageserver and proxy meet the restricted Pod Security Standard" "$(grep PodSecurity <<<"$out")"; else pass "operator, pageserver and proxy meet the restricted Pod Security Standard"; fi
for d in base overlays/example; do
  if k kustomize "$ROOT/deploy/kustomize/$d" >"$WORK/kustomize.yaml" 2>&1 && out=$(dry_run "$WORK/kustomize.yaml"); then pass "kustomize $d accepted"; else fail "kustomize $d accepted" "$out"; fi
done

echo "== deploy/samples"
k create namespace samples >/dev/null 2>&1
for f in "$ROOT"/deploy/samples/*.yaml; do
  if out=$(k -n samples apply --dry-run=server --validate=strict -f "$f" 2>&1); then pass "sample $(basename "$f") (dry run)"; else fail "sample $(basename "$f") (dry run)" "$out"; fi
done
for f in "$ROOT"/deploy/samples/*.yaml; do
  if out=$(k -n samples apply --server-side -f "$f" 2>&1); then pass "sample $(basename "$f") applied"; else fail "sample $(basename "$f") applied" "$out"; fi
done
out=$(k -n samples get branches,endpoints.pgbranch.io -o name 2>&1)
if [[ $(grep -c . <<<"$out") -ge 6 ]]; then pass "samples created ($(tr '\n' ' ' <<<"$out"))"; else fail "samples created" "$out"; fi

checks_summary "chart cluster"
