# shellcheck shell=bash
# Shared by the chart tests (sourced): the pass/fail reporting of tests/k8s/lib/checks.sh, and
# finding helm and kubectl (exit 77 = skipped when one is missing).
ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
CHART=$ROOT/helm/pgbranch
export VALUES=$ROOT/tests/k8s/chart/values
# shellcheck source=tests/k8s/lib/checks.sh
source "$ROOT/tests/k8s/lib/checks.sh"

K8S_BIN=$(find "${HOME:-/root}/.cache/pgbranch" -maxdepth 2 -path "*/k8s-v*/bin" -type d 2>/dev/null | sort -V | tail -n 1)

find_helm() {
  local h
  for h in "${PGBRANCH_HELM:-}" "$K8S_BIN/helm" "$(command -v helm || true)"; do
    if [[ -n $h && -x $h ]]; then echo "$h"; return 0; fi
  done
  return 1
}
find_kubectl() {
  local k
  for k in "$K8S_BIN/kubectl" "$(command -v kubectl || true)"; do
    if [[ -n $k && -x $k ]]; then echo "$k"; return 0; fi
  done
  return 1
}
HELM=$(find_helm) || { echo "SKIP  helm not found (scripts/k8s/build-k8s.sh builds it, or set PGBRANCH_HELM)"; exit 77; }
export PGBRANCH_HELM=$HELM
helm() { "$HELM" "$@"; }

# render NAME [helm template args...]: the chart as release pgbranch in pgbranch-system.
render() { helm template pgbranch "$CHART" --namespace pgbranch-system "$@"; }
