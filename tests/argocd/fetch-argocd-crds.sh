#!/usr/bin/env bash
# Fetches Argo CD's own CRDs (Application, ApplicationSet, AppProject: manifests/crds of the
# github.com/argoproj/argo-cd/v3 module) through the Go module proxy, into a cache keyed by
# version: ~/.cache/pgbranch/argocd/<version>/crds. A warm cache returns at once. Prints the
# directory on the last line; exits 77 when the module cannot be fetched (offline, no Go).
#   ARGOCD_VERSION (default v3.5.7: the newest v3 release whose go.mod this Go accepts;
#   v3.6 needs Go 1.27), PGBRANCH_CACHE (default ~/.cache/pgbranch).
set -euo pipefail

VERSION=${ARGOCD_VERSION:-v3.5.7}
CACHE=${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}
DEST=$CACHE/argocd/$VERSION/crds
FILES=(application-crd.yaml applicationset-crd.yaml appproject-crd.yaml)

have_all() {
  local f
  for f in "${FILES[@]}"; do [[ -s $DEST/$f ]] || return 1; done
}
if have_all; then
  echo "$DEST"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "fetch-argocd-crds: go is not installed" >&2
  exit 77
fi

export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
mod=$(mktemp -d /tmp/argocd-crds-mod.XXXXXX)
trap 'rm -rf "$mod"' EXIT
(cd "$mod" && go mod init fetch-argocd-crds >/dev/null 2>&1)
if ! json=$(cd "$mod" && go mod download -json "github.com/argoproj/argo-cd/v3@$VERSION" 2>&1); then
  echo "fetch-argocd-crds: cannot download github.com/argoproj/argo-cd/v3@$VERSION:" >&2
  echo "$json" >&2
  exit 77
fi
src=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("Dir",""))' <<<"$json")
if [[ -z $src || ! -d $src/manifests/crds ]]; then
  echo "fetch-argocd-crds: the module has no manifests/crds: $json" >&2
  exit 77
fi
# Filled beside the destination and renamed: a cut-off run never leaves a half-filled cache.
mkdir -p "$(dirname "$DEST")"
tmp=$(mktemp -d "$(dirname "$DEST")/.crds.XXXXXX")
for f in "${FILES[@]}"; do install -m 0644 "$src/manifests/crds/$f" "$tmp/$f"; done
chmod 0755 "$tmp"
rm -rf "$DEST"
mv "$tmp" "$DEST"
echo "$DEST"
