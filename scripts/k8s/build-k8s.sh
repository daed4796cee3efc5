#!/usr/bin/env bash
# Builds the tier-3 Kubernetes binaries from the Go module proxy into a cache outside the source
# tree, keyed by version: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl, kube-proxy (k8s.io/kubernetes), KWOK (fake nodes for the 1,000-branch benchmark),
# helm (helm.sh/helm/v3) and a slim CoreDNS (only the plugins cluster.sh --services uses).
# A warm run (binaries present, helm at HELM_VERSION) returns at once. Prints the bin directory
# on the last line.
#   K8S_VERSION (default v1.33.13), KWOK_VERSION (default v0.7.0), HELM_VERSION (default v3.22.0),
#   COREDNS_VERSION (default v1.15.0), PGBRANCH_CACHE (default ~/.cache/pgbranch),
#   PGBRANCH_K8S_SKIP_KWOK=1 to skip KWOK.
# Cold build times on 2 cores (Go 1.26, empty build cache): kube-apiserver ~18 min, the other
# k8s binaries minutes each. Measured on a busy machine (load 15-25): kube-proxy 26 s (k8s build
# cache warm from the others), helm ~7 min, slim coredns ~5.5-9 min (both include their module
# downloads). Warm run (all present, versions match): ~0.3 s.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.33.13}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
CACHE=${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}
BIN=$CACHE/k8s-$K8S_VERSION/bin
STAGING_VERSION=v0${K8S_VERSION#v1}
export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod}
export GOCACHE=${GOCACHE:-$CACHE/go/build}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$BIN"

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
missing=()
for b in "${k8s_bins[@]}"; do [[ -x $BIN/$b ]] || missing+=("$b"); done

if ((${#missing[@]})); then
  work=$CACHE/k8s-$K8S_VERSION/module
  mkdir -p "$work"
  cd "$work"
  if [[ ! -f go.sum ]]; then
    staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
      cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
      cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
      kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
      mount-utils pod-security-admission sample-apiserver)
    {
      echo "module pgbranch.io/k8sbuild"
      echo "go 1.24"
      echo "require k8s.io/kubernetes $K8S_VERSION"
      for m in "${staging[@]}"; do echo "replace k8s.io/$m => k8s.io/$m $STAGING_VERSION"; done
    } >go.mod
    printf 'package main\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n)\nfunc main() {}\n' >tools.go
    echo "== resolving k8s.io/kubernetes $K8S_VERSION (Go module proxy)" >&2
    go mod tidy >&2
  fi
  gv=k8s.io/component-base/version
  cv=k8s.io/client-go/pkg/version
  ldflags="-s -w -X $gv.gitVersion=$K8S_VERSION -X $gv.gitMajor=1 -X $gv.gitMinor=${K8S_VERSION#v1.} \
    -X $cv.gitVersion=$K8S_VERSION -X $gv.gitTreeState=clean"
  for b in "${missing[@]}"; do
    t0=$(date +%s)
    echo "== building $b $K8S_VERSION (cold: kube-apiserver ~18 min, others minutes)" >&2
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b" >&2
    mv "$BIN/$b.tmp" "$BIN/$b"
    echo "   $b built in $(( $(date +%s) - t0 ))s" >&2
  done
fi

if [[ ${PGBRANCH_K8S_SKIP_KWOK:-0} != 1 && ! -x $BIN/kwok ]]; then
  echo "== building kwok $KWOK_VERSION" >&2
  GOBIN=$BIN go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
fi

# helm: rebuilt when the cached binary reports another version. The ldflags are those of helm's
# Makefile (version, and the Kubernetes version `helm template` assumes: client-go's minor).
if [[ ! -x $BIN/helm || $("$BIN/helm" version --template '{{.Version}}' 2>/dev/null) != "$HELM_VERSION" ]]; then
  t0=$(date +%s)
  echo "== building helm $HELM_VERSION" >&2
  hdir=$(cd "$CACHE" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  k8s_minor=$(sed -n 's/^\tk8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$hdir/go.mod")
  hv=helm.sh/helm/v3/internal/version
  hldflags="-s -w -X $hv.version=$HELM_VERSION -X $hv.gitTreeState=clean \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  hbin=$(mktemp -d "$BIN/.helm.XXXXXX")
  GOBIN=$hbin go install -trimpath -ldflags "$hldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$hbin/helm" "$BIN/helm"
  rmdir "$hbin"
  echo "   helm built in $(($(date +%s) - t0))s" >&2
fi

# CoreDNS: a slim main (CoreDNS's documented way to choose plugins) with only what the test
# cluster's Corefile uses, instead of the full build (cloud SDKs, tracing) that takes far longer.
if [[ ! -x $BIN/coredns || $("$BIN/coredns" -version 2>/dev/null | sed -n 's/^CoreDNS-//p') != "${COREDNS_VERSION#v}" ]]; then
  t0=$(date +%s)
  echo "== building coredns $COREDNS_VERSION (slim)" >&2
  cwork=$CACHE/coredns-$COREDNS_VERSION/module
  mkdir -p "$cwork"
  cd "$cwork"
  if [[ ! -f go.sum ]]; then
    printf 'module pgbranch.io/corednsbuild\ngo 1.26\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >go.mod
    cat >main.go <<'GO'
// A CoreDNS with only the plugins the pgbranch test cluster uses.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() { coremain.Run() }
GO
    go mod tidy >&2
  fi
  go build -trimpath -ldflags "-s -w" -o "$BIN/coredns.tmp" . >&2
  mv "$BIN/coredns.tmp" "$BIN/coredns"
  echo "   coredns built in $(($(date +%s) - t0))s" >&2
fi
echo "$BIN"
