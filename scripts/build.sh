#!/usr/bin/env bash
# Installs the Debian packages pgbranch needs and builds everything into $PGBRANCH_BUILD_DIR
# (default build/), with Ninja and a ccache kept outside the source tree.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PGBRANCH_BUILD_DIR:-$ROOT/build}
"$ROOT/scripts/install-deps.sh"
export CCACHE_DIR=${CCACHE_DIR:-${HOME:-/root}/.cache/pgbranch/ccache}
# Hits across checkouts (CI builds a fresh clone in a new directory each time): paths under the
# source root are hashed relative to it, and the working directory is not hashed.
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1
mkdir -p "$CCACHE_DIR"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=${PGBRANCH_BUILD_TYPE:-RelWithDebInfo} >/dev/null
ninja -C "$BUILD" "$@"
