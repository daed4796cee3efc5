#!/usr/bin/env bash
# RBAC least privilege: the chart grants the operator and the proxy exactly the API permissions
# their code uses, no more, no less.
#
# The permissions are DERIVED by running the code: chart_rbac_driver (rbac_driver.cc) drives the
# real OperatorController, LeaderElector, EventRecorder and the proxy's KubeControlClient through
# a full lifecycle against the in-memory API, recording every call's (apiGroup, resource,
# verb). That set must equal the rules of the rendered ClusterRoles/Role (defaults, and with
# watched namespaces, where the same ClusterRoles are bound per namespace). A static cross-check
# then makes sure the driver did not miss a code path: every Resource constant the operator's
# and proxy's sources name, and every direct `->Verb(kube::kX` call, must be in the recorded set
# (a new call the driver does not exercise fails here until the driver covers it).
#
#   chart_rbac_test.sh DRIVER     (DRIVER = the chart_rbac_driver binary; ctest passes it)
set -uo pipefail
# shellcheck source=tests/k8s/chart/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
DRIVER=${1:?usage: chart_rbac_test.sh PATH-TO-chart_rbac_driver}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== derive (chart_rbac_driver)"
if "$DRIVER" >"$WORK/recorded.txt" 2>"$WORK/driver.log"; then
  pass "driver ran the whole lifecycle ($(wc -l <"$WORK/recorded.txt") permissions)"
else
  fail "driver ran the whole lifecycle" "$(cat "$WORK/driver.log")"
fi
sed 's/^/      recorded: /' "$WORK/recorded.txt"

# granted FILE: the chart's rules as "<component> <group> <resource> <verb> <scope>" lines
# (operator/proxy by role name; scope lease for the Role, watched for the ClusterRoles), after
# checking each role is bound to its component's ServiceAccount where it must be.
granted() {
  python3 - "$1" "$2" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
watch = [n for n in sys.argv[2].split(",") if n]
out, errors = set(), []
roles = {"pgbranch-operator": ("operator", "watched"), "pgbranch-proxy": ("proxy", "watched"),
         "pgbranch-operator-leader-election": ("operator", "lease")}
seen = set()
for d in docs:
    if d["kind"] not in ("ClusterRole", "Role"):
        continue
    name = d["metadata"]["name"]
    if name not in roles:
        errors.append(f"unexpected {d['kind']} {name}")
        continue
    seen.add(name)
    comp, scope = roles[name]
    if scope == "lease" and (d["kind"] != "Role" or d["metadata"]["namespace"] != "pgbranch-system"):
        errors.append(f"{name} must be a Role in the release namespace")
    for r in d["rules"]:
        for g in r["apiGroups"]:
            for res in r["resources"]:
                for v in r["verbs"]:
                    if "*" in (g, res, v):
                        errors.append(f"{name}: wildcard in {r}")
                    out.add(f"{comp} {g or 'core'} {res} {v} {scope}")
for n in roles:
    if n not in seen:
        errors.append(f"missing role {n}")
# Bindings: each role bound to its own ServiceAccount; watched roles per namespace or cluster-wide.
for n, (comp, scope) in roles.items():
    binds = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
             and d["roleRef"]["name"] == n]
    for b in binds:
        subj = [(s["kind"], s["name"], s.get("namespace")) for s in b["subjects"]]
        if subj != [("ServiceAccount", f"pgbranch-{comp}", "pgbranch-system")]:
            errors.append(f"{b['kind']} {b['metadata']['name']}: subjects {subj}")
    where = sorted((b["kind"], b["metadata"].get("namespace", "*")) for b in binds)
    if scope == "lease":
        want = [("RoleBinding", "pgbranch-system")]
    elif watch:
        want = sorted(("RoleBinding", ns) for ns in watch)
    else:
        want = [("ClusterRoleBinding", "*")]
    if where != want:
        errors.append(f"{n} bound {where}, want {want}")
for e in errors:
    print("ERROR " + e)
print("\n".join(sorted(out)))
PY
}

sort -u "$WORK/recorded.txt" >"$WORK/want.txt"
for variant in defaults namespaced; do
  ns=""
  [[ $variant == namespaced ]] && ns=team-a,team-b
  if ! render -f "$VALUES/$variant.yaml" >"$WORK/$variant.yaml" 2>"$WORK/err"; then
    fail "render $variant" "$(cat "$WORK/err")"
    continue
  fi
  granted "$WORK/$variant.yaml" "$ns" >"$WORK/granted.txt"
  if grep -q '^ERROR' "$WORK/granted.txt"; then
    fail "$variant: roles and bindings well-formed" "$(grep '^ERROR' "$WORK/granted.txt")"
  else
    pass "$variant: roles and bindings well-formed (own ServiceAccounts; Lease Role in the release namespace; $([[ -n $ns ]] && echo "RoleBindings in $ns" || echo "ClusterRoleBindings"))"
  fi
  grep -v '^ERROR' "$WORK/granted.txt" | sort -u >"$WORK/have.txt"
  extra=$(comm -13 "$WORK/want.txt" "$WORK/have.txt")
  missing=$(comm -23 "$WORK/want.txt" "$WORK/have.txt")
  if [[ -z $extra ]]; then pass "$variant: nothing granted that the code does not use"; else fail "$variant: nothing granted that the code does not use" "granted, never used: "$'\n'"$extra"; fi
  if [[ -z $missing ]]; then pass "$variant: everything the code uses is granted"; else fail "$variant: everything the code uses is granted" "used, not granted: "$'\n'"$missing"; fi
done

echo "== static cross-check of the sources"
out=$(python3 - "$ROOT" "$WORK/want.txt" <<'PY'
import re, sys, pathlib
root = pathlib.Path(sys.argv[1])
recorded = [l.split() for l in open(sys.argv[2]) if l.strip()]
have_res = {(c, g, r.split("/")[0]) for c, g, r, v, s in recorded}
have_verb = {(c, g, r, v) for c, g, r, v, s in recorded}
consts = {}
for m in re.finditer(r'inline const Resource (k\w+)\{"([^"]*)", "[^"]*", "([^"]*)"\}',
                     (root / "operator/kube/kube_client.h").read_text()):
    consts[m.group(1)] = (m.group(2) or "core", m.group(3))
if len(consts) < 5:
    print("ERROR could not read the Resource constants of operator/kube/kube_client.h"); sys.exit()
sources = {
    "operator": [root / "operator/main.cc", *sorted((root / "operator/k8s").glob("*.cc")),
                 *[p for p in sorted((root / "operator/kube").glob("*.cc"))
                   if p.name not in ("fake_kube_api.cc",)]],
    "proxy": [p for p in sorted((root / "proxy").glob("*.cc"))],
}
verbs = {"Get": "get", "List": "list", "Create": "create", "Update": "update",
         "UpdateStatus": "update", "Patch": "patch", "Delete": "delete", "StartWatch": "watch"}
errors, checked = [], 0
for comp, files in sources.items():
    for f in files:
        text = f.read_text()
        for name in sorted(set(re.findall(r'\b(k[A-Z]\w+)\b', text)) & consts.keys()):
            g, r = consts[name]
            checked += 1
            if (comp, g, r) not in have_res:
                errors.append(f"{f.relative_to(root)} names {name} ({g}/{r}) but the driver never called it as {comp}")
        for verb, name in re.findall(r'->(\w+)\(\s*(?:kube::)?(k[A-Z]\w+)\b', text):
            if verb not in verbs or name not in consts:
                continue
            g, r = consts[name]
            if verb == "UpdateStatus":
                r += "/status"
            checked += 1
            if (comp, g, r, verbs[verb]) not in have_verb:
                errors.append(f"{f.relative_to(root)} calls {verb}({name}) but the driver never recorded {comp} {g} {r} {verbs[verb]}")
        for name in re.findall(r'Informer>\(\s*\w+,\s*(?:kube::)?(k[A-Z]\w+)', text):
            g, r = consts[name]
            for v in ("list", "watch"):
                checked += 1
                if (comp, g, r, v) not in have_verb:
                    errors.append(f"{f.relative_to(root)} runs an informer on {name} but {comp} {g} {r} {v} was not recorded")
for e in errors:
    print("ERROR " + e)
print(f"checked {checked} references")
PY
)
if grep -q '^ERROR' <<<"$out"; then fail "every API reference in operator/ and proxy/ is covered by the driver" "$out"; else pass "every API reference in operator/ and proxy/ is covered by the driver ($out)"; fi

checks_summary "chart RBAC"
