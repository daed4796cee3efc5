#!/usr/bin/env bash
# Builds the four pgbranch images from their Containerfiles (operator/, pageserver/, proxy/,
# compute/; multi-stage: Debian bookworm build stage, bookworm-slim runtime stage) with whichever
# container builder is installed, for users with a registry. The build context is the repository
# root. (The tests do not use this: scripts/images/build-images.sh assembles the same images from
# debootstrap without a builder and imports them into the test cluster.)
#
#   build-containerfiles.sh [--tool docker|podman|buildah] [--registry R] [--tag T] [--push]
#                           [--only NAME[,NAME...]] [--dry-run]
#
# Images: R/pgbranch/{operator,pageserver,proxy,compute}:T (default R=docker.io, T=dev, the names
# the chart and build-images.sh use). --tool: default the first of podman, docker, buildah found
# on PATH (docker only when its daemon answers). --push pushes each image after it is built (log in to R first). --dry-run prints the
# exact commands and runs nothing (it works without a builder: it shows --tool's, default docker).
# Exit codes: 0 built (or dry run), 1 a build or push failed, 2 bad arguments or no builder found.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
IMAGES=(operator pageserver proxy compute)
TOOL=""
REGISTRY=docker.io
TAG=${PGBRANCH_IMAGE_TAG:-dev}
PUSH=0
DRY_RUN=0
ONLY=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "build-containerfiles: $*" >&2; exit 2; }

while (($#)); do
  case $1 in
    --tool) [[ $# -ge 2 ]] || die "--tool needs a value (docker, podman or buildah)"; TOOL=$2; shift 2 ;;
    --tool=*) TOOL=${1#*=}; shift ;;
    --registry) [[ $# -ge 2 ]] || die "--registry needs a value (e.g. ghcr.io/acme)"; REGISTRY=$2; shift 2 ;;
    --registry=*) REGISTRY=${1#*=}; shift ;;
    --tag) [[ $# -ge 2 ]] || die "--tag needs a value (e.g. 0.1.0)"; TAG=$2; shift 2 ;;
    --tag=*) TAG=${1#*=}; shift ;;
    --only) [[ $# -ge 2 ]] || die "--only needs a value (e.g. operator,proxy)"; ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --push) PUSH=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

case $TOOL in
  ""|docker|podman|buildah) ;;
  *) die "--tool must be docker, podman or buildah, not '$TOOL'" ;;
esac
[[ $TAG =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--tag '$TAG' is not a valid image tag"
REGISTRY=${REGISTRY%/}
[[ -n $REGISTRY && $REGISTRY != */ ]] || die "--registry must not be empty"

if [[ -n $ONLY ]]; then
  IFS=',' read -r -a wanted <<<"$ONLY"
  for w in "${wanted[@]}"; do
    [[ " ${IMAGES[*]} " == *" $w "* ]] || die "--only: '$w' is not one of ${IMAGES[*]}"
  done
  IMAGES=("${wanted[@]}")
fi

# A builder is usable when it is on PATH and, for docker, its daemon answers (podman and buildah
# need none). NOTE explains why the last candidate was not usable.
NOTE=""
usable() { # tool
  if ! command -v "$1" >/dev/null 2>&1; then NOTE="$1 is not installed (or not on PATH)"; return 1; fi
  if [[ $1 == docker ]] && ! timeout 20 docker info >/dev/null 2>&1; then
    NOTE="docker is installed but its daemon does not answer (docker info fails: start dockerd or set DOCKER_HOST)"
    return 1
  fi
  return 0
}
HINT="build the same images without a builder: scripts/images/build-images.sh (OCI tarballs,
  --import loads them into the test cluster's containerd); --dry-run prints the commands."
if [[ -n $TOOL ]]; then
  if ! usable "$TOOL"; then
    if ((DRY_RUN)); then
      echo "# dry run: $NOTE; these are the commands it would run" >&2
    else
      die "$NOTE. Install it or pick another with --tool, or $HINT"
    fi
  fi
else
  notes=()
  for t in podman docker buildah; do
    if usable "$t"; then TOOL=$t; break; fi
    notes+=("$NOTE")
  done
  if [[ -z $TOOL ]]; then
    if ((DRY_RUN)); then
      TOOL=docker
      echo "# dry run: no usable builder here ($(IFS=';'; echo "${notes[*]}")); showing docker's commands" >&2
    else
      die "no usable container builder: $(printf '\n  - %s' "${notes[@]}")
  Install one (e.g. apt-get install podman), or $HINT"
    fi
  fi
fi

# The commands for one image, one per line (words quoted for a shell).
commands_for() { # name
  local name=$1 ref=$REGISTRY/pgbranch/$1:$TAG file=$ROOT/$1/Containerfile
  [[ -f $file ]] || { echo "build-containerfiles: $file is missing" >&2; exit 1; }
  case $TOOL in
    docker) printf '%q ' docker build --file "$file" --tag "$ref" "$ROOT" ;;
    podman) printf '%q ' podman build --file "$file" --tag "$ref" "$ROOT" ;;
    buildah) printf '%q ' buildah build --file "$file" --tag "$ref" "$ROOT" ;;
  esac
  echo
  if ((PUSH)); then printf '%q ' "$TOOL" push "$ref"; echo; fi
}

for name in "${IMAGES[@]}"; do
  while IFS= read -r cmd; do
    cmd=${cmd% }
    if ((DRY_RUN)); then
      echo "$cmd"
    else
      echo "build-containerfiles: $cmd" >&2
      bash -c "$cmd" || { echo "build-containerfiles: failed: $cmd" >&2; exit 1; }
    fi
  done < <(commands_for "$name")
done
((DRY_RUN)) || echo "build-containerfiles: built ${IMAGES[*]} as $REGISTRY/pgbranch/<name>:$TAG" >&2
