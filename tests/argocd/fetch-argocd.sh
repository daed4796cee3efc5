#!/usr/bin/env bash
# Fetches what the tests use from Argo CD itself, through the Go module proxy
# (github.com/argoproj/argo-cd/v3), into a cache keyed by version, ~/.cache/pgbranch/argocd/<version>/:
#   crds/{application,applicationset,appproject}-crd.yaml   Argo CD's CRDs (manifests/crds)
#   lua/oslib_safe.go                                       the safe os library of Argo CD's Lua VM
# A warm cache returns at once. Prints the version's cache directory on the last line; exits 77
# when the module cannot be fetched (offline, no Go).
#   ARGOCD_VERSION (default v3.5.7: the newest v3 release whose go.mod this Go accepts;
#   v3.6 needs Go 1.27), PGBRANCH_CACHE (default ~/.cache/pgbranch).
set -euo pipefail

VERSION=${ARGOCD_VERSION:-v3.5.7}
CACHE=${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}
DEST=$CACHE/argocd/$VERSION
# cache path <- path in the module
declare -A FILES=(
  [crds/application-crd.yaml]=manifests/crds/application-crd.yaml
  [crds/applicationset-crd.yaml]=manifests/crds/applicationset-crd.yaml
  [crds/appproject-crd.yaml]=manifests/crds/appproject-crd.yaml
  [lua/oslib_safe.go]=util/lua/oslib_safe.go
)

have_all() {
  local f
  for f in "${!FILES[@]}"; do [[ -s $DEST/$f ]] || return 1; done
}
if have_all; then
  echo "$DEST"
  exit 0
fi
# One fetch at a time (tests run in parallel): the second one finds the cache filled.
mkdir -p "$(dirname "$DEST")"
exec 9>"$(dirname "$DEST")/.fetch.lock"
flock 9
if have_all; then
  echo "$DEST"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "fetch-argocd: go is not installed" >&2
  exit 77
fi

export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod}
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
mod=$(mktemp -d /tmp/fetch-argocd-mod.XXXXXX)
trap 'rm -rf "$mod"' EXIT
(cd "$mod" && go mod init fetch-argocd >/dev/null 2>&1)
if ! json=$(cd "$mod" && go mod download -json "github.com/argoproj/argo-cd/v3@$VERSION" 2>&1); then
  echo "fetch-argocd: cannot download github.com/argoproj/argo-cd/v3@$VERSION:" >&2
  echo "$json" >&2
  exit 77
fi
src=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get("Dir",""))' <<<"$json")
for f in "${!FILES[@]}"; do
  if [[ -z $src || ! -f $src/${FILES[$f]} ]]; then
    echo "fetch-argocd: the module has no ${FILES[$f]}: $json" >&2
    exit 77
  fi
done
# Filled beside the destination and renamed: a cut-off run never leaves a half-filled cache.
tmp=$(mktemp -d "$(dirname "$DEST")/.fetch.XXXXXX")
for f in "${!FILES[@]}"; do
  mkdir -p "$(dirname "$tmp/$f")"
  install -m 0644 "$src/${FILES[$f]}" "$tmp/$f"
done
chmod 0755 "$tmp"
rm -rf "$DEST"
mv "$tmp" "$DEST"
echo "$DEST"
