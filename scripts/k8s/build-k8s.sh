#!/usr/bin/env bash
# Builds the tier-3 Kubernetes binaries from the Go module proxy into a cache outside the source
# tree, keyed by version: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl (k8s.io/kubernetes), and KWOK (fake nodes for the 1,000-branch benchmark).
# A warm run (binaries present) returns at once. Prints the bin directory on the last line.
#   K8S_VERSION (default v1.33.13), KWOK_VERSION (default v0.7.0),
#   PGBRANCH_CACHE (default ~/.cache/pgbranch), PGBRANCH_K8S_SKIP_KWOK=1 to skip KWOK.
set -euo pipefail
K8S_VERSION=${K8S_VERSION:-v1.33.13}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
CACHE=${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}
BIN=$CACHE/k8s-$K8S_VERSION/bin
STAGING_VERSION=v0${K8S_VERSION#v1}
export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod}
export GOCACHE=${GOCACHE:-$CACHE/go/build}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$BIN"

k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
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
echo "$BIN"
