#!/usr/bin/env bash
# The chart without a cluster: helm lint --strict; helm template with every values file under
# values/ (and each renders what it says); every bad values file under values/bad/ fails with
# the message its "# expect:" line names; the chart's CRD and policy copies equal crds/;
# appVersion is the project version; the token Secret is kept and reused; deploy/install.yaml
# and deploy/kustomize/base are fresh; the kustomize base and example overlay build.
# One PASS/FAIL line per check. Exit 77 when helm is missing.
set -uo pipefail
# shellcheck source=tests/k8s/chart/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== helm lint"
if out=$(helm lint --strict "$CHART" 2>&1); then pass "helm lint --strict"; else fail "helm lint --strict" "$out"; fi
for f in "$VALUES"/*.yaml; do
  if out=$(helm lint --strict "$CHART" -f "$f" 2>&1); then pass "helm lint -f $(basename "$f")"; else fail "helm lint -f $(basename "$f")" "$out"; fi
done

echo "== helm template"
for f in "$VALUES"/*.yaml; do
  n=$(basename "$f" .yaml)
  if render -f "$f" >"$WORK/$n.yaml" 2>"$WORK/$n.err"; then pass "template $n"; else fail "template $n" "$(cat "$WORK/$n.err")"; fi
done

# query FILE PYTHON-EXPR: evaluates EXPR with `docs` = the rendered objects; prints the result.
query() {
  python3 - "$1" "$2" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
def one(kind, name=None):
    m = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(m) == 1, f"{len(m)} {kind} {name}"
    return m[0]
def kinds(): return sorted(d["kind"] for d in docs)
def args(name): return one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]["args"]
def flags(name, *keys):
    # "--flag value" pairs (every binary takes the value as the next argument) of the keys given.
    a, out, i = args(name), [], 0
    while i < len(a):
        has_value = i + 1 < len(a) and not a[i + 1].startswith("--")
        if a[i] in keys:
            out.append(a[i] + "=" + (a[i + 1] if has_value else ""))
        i += 2 if has_value else 1
    return out
print(eval(sys.argv[2]))
PY
}
expect() {  # expect NAME FILE PYTHON-EXPR EXPECTED
  local out
  out=$(query "$2" "$3" 2>&1)
  if [[ $out == "$4" ]]; then pass "$1"; else fail "$1" "expected: $4"$'\n'"got: $out"; fi
}
D=$WORK/defaults.yaml
expect "defaults: object kinds" "$D" '" ".join(kinds())' \
  "ClusterRole ClusterRole ClusterRoleBinding ClusterRoleBinding ConfigMap CustomResourceDefinition CustomResourceDefinition CustomResourceDefinition Deployment Deployment NetworkPolicy NetworkPolicy NetworkPolicy PodDisruptionBudget PodDisruptionBudget PodDisruptionBudget Role RoleBinding Secret Service Service Service Service ServiceAccount ServiceAccount StatefulSet ValidatingAdmissionPolicy ValidatingAdmissionPolicyBinding"
expect "defaults: operator watches every namespace" "$D" 'flags("pgbranch-operator", "--namespaces")' "['--namespaces=']"
expect "defaults: operator reaches the pageserver pod by its stable name" "$D" 'flags("pgbranch-operator", "--pageserver", "--compute-pageserver")' \
  "['--pageserver=pgbranch-pageserver-0.pgbranch-pageserver.pgbranch-system.svc.cluster.local:6400', '--compute-pageserver=pgbranch-pageserver-0.pgbranch-pageserver.pgbranch-system.svc.cluster.local:6400']"
expect "defaults: proxy service and lease namespace" "$D" 'flags("pgbranch-operator", "--proxy-service", "--leader-elect", "--lease-namespace")' \
  "['--proxy-service=pgbranch-proxy.pgbranch-system.svc.cluster.local', '--leader-elect=true', '--lease-namespace=pgbranch-system']"
expect "defaults: pageserver tokens signed with the chart's Secret" "$D" '(flags("pgbranch-operator", "--pageserver-signing-key-file"), __import__("yaml").safe_load(one("ConfigMap", "pgbranch-pageserver")["data"]["pageserver.yaml"])["auth"])' \
  "(['--pageserver-signing-key-file=/etc/pgbranch/signing-key/signing-key'], {'signing_key_file': '/etc/pgbranch/signing-key/signing-key'})"
expect "defaults: two operator replicas" "$D" 'one("Deployment", "pgbranch-operator")["spec"]["replicas"]' "2"
expect "defaults: restricted security context" "$D" '[(c["securityContext"]["runAsNonRoot"], c["securityContext"]["readOnlyRootFilesystem"], c["securityContext"]["capabilities"]["drop"], c["securityContext"]["seccompProfile"]["type"]) for d in docs if d["kind"] in ("Deployment", "StatefulSet") for c in d["spec"]["template"]["spec"]["containers"]]' \
  "[(True, True, ['ALL'], 'RuntimeDefault'), (True, True, ['ALL'], 'RuntimeDefault'), (True, True, ['ALL'], 'RuntimeDefault')]"
expect "defaults: pageserver PVC and fsGroup" "$D" '(one("StatefulSet")["spec"]["volumeClaimTemplates"][0]["spec"], one("StatefulSet")["spec"]["template"]["spec"]["securityContext"]["fsGroup"])' \
  "({'accessModes': ['ReadWriteOnce'], 'resources': {'requests': {'storage': '20Gi'}}}, 10001)"
expect "defaults: CRDs, protected-branch policy and token Secret kept on uninstall" "$D" 'sorted(d["kind"] for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep")' \
  "['CustomResourceDefinition', 'CustomResourceDefinition', 'CustomResourceDefinition', 'Secret', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']"
expect "defaults: suspendTimeout default 5m" "$D" 'one("CustomResourceDefinition", "endpoints.pgbranch.io")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["suspendTimeout"]["default"]' "5m"
expect "defaults: images from appVersion" "$D" 'sorted(c["image"] for d in docs if d["kind"] in ("Deployment", "StatefulSet") for c in d["spec"]["template"]["spec"]["containers"])' \
  "['docker.io/pgbranch/operator:0.1.0', 'docker.io/pgbranch/pageserver:0.1.0', 'docker.io/pgbranch/proxy:0.1.0']"
N=$WORK/namespaced.yaml
expect "namespaced: RoleBindings per watched namespace, no ClusterRoleBinding" "$N" 'sorted((d["kind"], d["metadata"].get("namespace", "")) for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding"))' \
  "[('RoleBinding', 'pgbranch-system'), ('RoleBinding', 'team-a'), ('RoleBinding', 'team-a'), ('RoleBinding', 'team-b'), ('RoleBinding', 'team-b')]"
expect "namespaced: operator and proxy flags" "$N" '(flags("pgbranch-operator", "--namespaces"), flags("pgbranch-proxy", "--namespaces"))' \
  "(['--namespaces=team-a,team-b'], ['--namespaces=team-a,team-b'])"
expect "namespaced: compute NetworkPolicies" "$N" 'sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "pgbranch-compute")' "['team-a', 'team-b']"
P=$WORK/device-plugin.yaml
expect "devicePlugin: operator flags" "$P" 'flags("pgbranch-operator", "--fuse-device-resource", "--compute-cpu", "--compute-memory")' \
  "['--fuse-device-resource=example.com/fuse', '--compute-cpu=1', '--compute-memory=2Gi']"
expect "devicePlugin: suspendTimeout default 10m in the CRD" "$P" 'one("CustomResourceDefinition", "endpoints.pgbranch.io")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["suspendTimeout"]["default"]' "10m"
NP=$WORK/nodeport.yaml
expect "nodeport: proxy Service" "$NP" '(one("Service", "pgbranch-proxy")["spec"]["type"], one("Service", "pgbranch-proxy")["spec"]["ports"][0]["nodePort"], one("Service", "pgbranch-proxy")["spec"]["externalTrafficPolicy"])' "('NodePort', 30432, 'Local')"
expect "nodeport: TLS and external host" "$NP" '(flags("pgbranch-proxy", "--tls-cert", "--tls-key"), flags("pgbranch-operator", "--proxy-host"))' \
  "(['--tls-cert=/etc/pgbranch/tls/tls.crt', '--tls-key=/etc/pgbranch/tls/tls.key'], ['--proxy-host=db.example.com'])"
M=$WORK/monitoring.yaml
expect "monitoring: PodMonitor, ServiceMonitor, dashboard" "$M" 'sorted(d["kind"] + "/" + d["metadata"]["name"] for d in docs if d["kind"] in ("PodMonitor", "ServiceMonitor") or d["metadata"]["name"].endswith("dashboard"))' \
  "['ConfigMap/pgbranch-dashboard', 'PodMonitor/pgbranch', 'ServiceMonitor/pgbranch']"
# The monitors are validated here (the test API server has no Prometheus-operator CRDs):
# required fields, and their selectors match the pods/Services that carry a "metrics" port.
expect "monitoring: PodMonitor selects exactly the pods with a metrics port" "$M" 'sorted(d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment", "StatefulSet") and all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in one("PodMonitor")["spec"]["selector"]["matchLabels"].items()) and d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] in one("PodMonitor")["spec"]["selector"]["matchExpressions"][0]["values"] and any(p["name"] == one("PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] for c in d["spec"]["template"]["spec"]["containers"] for p in c["ports"]))' \
  "['pgbranch-operator', 'pgbranch-pageserver', 'pgbranch-proxy']"
expect "monitoring: ServiceMonitor selects exactly the metrics Services" "$M" 'sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Service" and all(d["metadata"]["labels"].get(k) == v for k, v in one("ServiceMonitor")["spec"]["selector"]["matchLabels"].items()) and any(p["name"] == one("ServiceMonitor")["spec"]["endpoints"][0]["port"] for p in d["spec"]["ports"]))' \
  "['pgbranch-operator', 'pgbranch-pageserver', 'pgbranch-proxy-metrics']"
expect "monitoring: dashboard panels use metrics the code exports" "$M" '__import__("json").loads(one("ConfigMap", "pgbranch-dashboard")["data"]["pgbranch.json"])["panels"].__len__() > 10' "True"
dash_metrics=$(grep -o 'pgbranch_[a-z_]*' "$CHART/files/dashboards/pgbranch.json" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
unknown=""
for m in $dash_metrics; do
  grep -rqs "\"$m\"" "$ROOT/operator" "$ROOT/pageserver" "$ROOT/proxy" || unknown+="$m "
done
if [[ -z $unknown ]]; then pass "dashboard: every metric exists in the code"; else fail "dashboard: every metric exists in the code" "unknown: $unknown"; fi
O=$WORK/no-network-policy.yaml
expect "no-network-policy: no NetworkPolicy, CRD or policy; private registry" "$O" '(sum(d["kind"] in ("NetworkPolicy", "CustomResourceDefinition", "ValidatingAdmissionPolicy") for d in docs), one("Deployment", "pgbranch-operator")["spec"]["template"]["spec"]["containers"][0]["image"], flags("pgbranch-operator", "--compute-image"))' \
  "(0, 'registry.example.com/pgbranch/operator:1.2.3', ['--compute-image=registry.example.com/pgbranch/compute:1.2.3'])"

echo "== bad values fail with a readable message"
for f in "$VALUES"/bad/*.yaml; do
  want=$(sed -n 's/^# expect: //p' "$f")
  if out=$(render -f "$f" 2>&1); then
    fail "bad $(basename "$f") is refused" "rendered without error"
  elif [[ $out == *"$want"* ]]; then
    pass "bad $(basename "$f"): $(grep -F -- "$want" <<<"$out" | head -n 1 | sed 's/^ *- *//' | cut -c1-120)"
  else
    fail "bad $(basename "$f") names '$want'" "$out"
  fi
done

echo "== copies, version, token"
for f in "$ROOT"/crds/*.yaml; do
  if cmp -s "$f" "$CHART/files/crds/$(basename "$f")"; then pass "chart copy of crds/$(basename "$f") is identical"; else fail "chart copy of crds/$(basename "$f") is identical" "diff crds/$(basename "$f") helm/pgbranch/files/crds/: copy it again"; fi
done
out=$(python3 - "$ROOT" "$D" "$WORK/device-plugin.yaml" <<'PY'
import sys, yaml, copy
root, rendered = sys.argv[1], [list(yaml.safe_load_all(open(f))) for f in sys.argv[2:]]
errors = []
for path in ("crds/branches.pgbranch.io.yaml", "crds/endpoints.pgbranch.io.yaml", "crds/promotions.pgbranch.io.yaml", "crds/protected-branch-policy.yaml"):
    for src in yaml.safe_load_all(open(f"{root}/{path}")):
        if not src:
            continue
        for docs, timeout in zip(rendered, ("5m", "10m")):
            got = [d for d in docs if d and d["kind"] == src["kind"] and d["metadata"]["name"] == src["metadata"]["name"]]
            if len(got) != 1:
                errors.append(f"{path}: {src['kind']} {src['metadata']['name']} rendered {len(got)} times"); continue
            got, want = copy.deepcopy(got[0]), copy.deepcopy(src)
            # The chart adds its labels and the keep annotation, and sets the suspendTimeout default.
            for m in (got["metadata"], want["metadata"]):
                m.pop("labels", None); m.pop("annotations", None)
            if src["kind"] == "CustomResourceDefinition" and src["spec"]["names"]["kind"] == "Endpoint":
                for v in want["spec"]["versions"]:
                    v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["suspendTimeout"]["default"] = timeout
            if got != want:
                errors.append(f"{path}: {src['metadata']['name']} rendered differently (suspendTimeout {timeout})")
print("\n".join(errors))
PY
)
if [[ -z $out ]]; then pass "rendered CRDs and policy = crds/ (apart from labels, keep, suspendTimeout default)"; else fail "rendered CRDs and policy = crds/" "$out"; fi
extra=$(comm -13 <(ls "$ROOT/crds") <(ls "$CHART/files/crds"))
if [[ -z $extra ]]; then pass "no stale CRD copies"; else fail "no stale CRD copies" "$extra"; fi
want_version=$(sed -n 's/.*set(PGBRANCH_VERSION "\([0-9][^"]*\)").*/\1/p' "$ROOT/cli/CMakeLists.txt" | head -n 1)
app_version=$(sed -n 's/^appVersion: "\(.*\)"/\1/p' "$CHART/Chart.yaml")
if [[ -n $want_version && $app_version == "$want_version" ]]; then pass "appVersion $app_version = the project version"; else fail "appVersion = the project version" "Chart.yaml: $app_version, cli/CMakeLists.txt: $want_version"; fi
k1=$(query "$D" 'one("Secret")["data"]["signing-key"]')
render >"$WORK/again.yaml"
k2=$(query "$WORK/again.yaml" 'one("Secret")["data"]["signing-key"]')
if [[ ${#k1} -ge 64 && $k1 != "$k2" ]]; then pass "token: a fresh random key without a cluster (lookup keeps it on a real upgrade)"; else fail "token: random key" "$k1 / $k2"; fi
expect "token: mounted into the pageserver and the operator" "$D" 'sorted(d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment", "StatefulSet") for v in d["spec"]["template"]["spec"]["volumes"] if v.get("secret", {}).get("secretName") == "pgbranch-pageserver-token")' \
  "['pgbranch-operator', 'pgbranch-pageserver']"

echo "== deploy/"
if out=$("$ROOT/scripts/render-install.sh" --check 2>&1); then pass "deploy/install.yaml and deploy/kustomize/base are fresh"; else fail "deploy/install.yaml and deploy/kustomize/base are fresh" "$out"; fi
if kubectl=$(find_kubectl); then
  if "$kubectl" kustomize "$ROOT/deploy/kustomize/base" >"$WORK/base.yaml" 2>"$WORK/k.err"; then pass "kubectl kustomize base"; else fail "kubectl kustomize base" "$(cat "$WORK/k.err")"; fi
  if cmp -s <(query "$WORK/base.yaml" 'sorted((d["kind"], d["metadata"]["name"]) for d in docs)') \
            <(python3 -c 'import yaml,sys; print(sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$ROOT/deploy/install.yaml"); then
    pass "kustomize base = install.yaml (same objects)"
  else
    fail "kustomize base = install.yaml (same objects)"
  fi
  if "$kubectl" kustomize "$ROOT/deploy/kustomize/overlays/example" >"$WORK/overlay.yaml" 2>"$WORK/k.err"; then pass "kubectl kustomize overlays/example"; else fail "kubectl kustomize overlays/example" "$(cat "$WORK/k.err")"; fi
  expect "overlay: LoadBalancer proxy, 100Gi volume, pinned tag" "$WORK/overlay.yaml" '(one("Service", "pgbranch-proxy")["spec"]["type"], one("StatefulSet")["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], one("Deployment", "pgbranch-operator")["spec"]["template"]["spec"]["containers"][0]["image"])' \
    "('LoadBalancer', '100Gi', 'docker.io/pgbranch/operator:0.1.0')"
else
  fail "kubectl found" "no kubectl in $K8S_BIN or PATH"
fi
expect "install.yaml: no token Secret (created by hand), restricted namespace" "$ROOT/deploy/install.yaml" '(sum(d["kind"] == "Secret" for d in docs), one("Namespace")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"])' "(0, 'restricted')"

checks_summary "chart static"
