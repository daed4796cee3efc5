#!/usr/bin/env bash
# Builds the pgbranch container images without a registry or a container builder: OCI image
# tarballs assembled with tar + JSON, importable with `ctr -n k8s.io images import`.
#
#   build-images.sh [--bin-dir DIR] [--out DIR] [--import] [--pause-only]
#
# Images (names as containerd/CRI see them; the short names work in pod specs):
#   docker.io/pgbranch/pause:dev        pod sandbox: a static C program that sleeps until signalled
#   docker.io/pgbranch/compute:dev      Debian bookworm + runtime-packages.txt + our binaries
#   docker.io/pgbranch/proxy:dev        same layers, Entrypoint pgbranch-proxy, User 10001
#   docker.io/pgbranch/pageserver:dev   same layers, Entrypoint pgbranch-pageserver, User 10001
#   docker.io/pgbranch/operator:dev     same layers, Entrypoint pgbranch-operator, User 10001
# compute runs as root (it mounts pagefs: privileged FUSE); the others as uid 10001 (pgbranch).
#
# Layers: (1) Debian root filesystem from `debootstrap --variant=minbase bookworm` plus the
# packages of runtime-packages.txt, cached under $PGBRANCH_CACHE/images keyed by a hash of that
# list (a cold build takes ~1-2 min, later runs reuse the tar); (2) /usr/local/bin with whichever
# of our binaries (and the compute's start-gate library) exist in --bin-dir (small, re-tarred on
# every run, deterministic).
# Outputs: $OUT/pause.oci.tar and $OUT/pgbranch.oci.tar (default OUT=$PGBRANCH_CACHE/images/out).
# --import loads them into the containerd of scripts/k8s/node.sh (socket
# $PGBRANCH_K8S_DIR/containerd/containerd.sock, or $PGBRANCH_CONTAINERD_SOCK), namespace k8s.io;
# an image whose manifest digest is already there is not imported again.
# Env: PGBRANCH_CACHE (~/.cache/pgbranch), PGBRANCH_K8S_DIR (/tmp/pgbranch-k8s),
#      PGBRANCH_DEBIAN_MIRROR (http://deb.debian.org/debian), PGBRANCH_IMAGE_TAG (dev).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${PGBRANCH_CACHE:-$HOME/.cache/pgbranch}
IMG_CACHE=$CACHE/images
K8S_DIR=${PGBRANCH_K8S_DIR:-/tmp/pgbranch-k8s}
SOCK=${PGBRANCH_CONTAINERD_SOCK:-$K8S_DIR/containerd/containerd.sock}
MIRROR=${PGBRANCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${PGBRANCH_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
SUITE=bookworm
TAG=${PGBRANCH_IMAGE_TAG:-dev}
BIN_DIR=$ROOT/build/bin
OUT=$IMG_CACHE/out
DO_IMPORT=0
PAUSE_ONLY=0
# Bump when the way the Debian layer is made changes (it is part of the cache key).
DEBIAN_LAYER_RECIPE=4
# libpgbranch_start_gate.so: next to pgbranch-compute, which preloads it into the postmaster it
# spawns ahead of the mount (compute/gated_child.h); an image without it starts as before, later.
BINARIES=(pgbranch-compute pagefs pgbranch-proxy pgbranch-pageserver pagectl pgbranch-operator libpgbranch_start_gate.so)

while (($#)); do
  case $1 in
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --import) DO_IMPORT=1; shift ;;
    --pause-only) PAUSE_ONLY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images: unknown argument $1" >&2; exit 2 ;;
  esac
done

T_START=$(date +%s.%N)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
log() { echo "build-images: $*" >&2; }

ARCH=$(dpkg --print-architecture)   # amd64/arm64: same names in OCI
mkdir -p "$IMG_CACHE" "$OUT"
# One run at a time per cache: the clean-up of the staging store at the end of a run removes every
# blob its own images do not use, which can be a concurrent run's (two tests building images at
# once: seen as the other run's import failing on missing blobs).
exec 9>"$IMG_CACHE/.build-images.lock"
if ! flock -n 9; then
  log "waiting for another build-images run to finish (lock $IMG_CACHE/.build-images.lock)"
  flock 9
fi
LAYOUT=$IMG_CACHE/oci            # blobs of every image we made (content addressed)
mkdir -p "$LAYOUT/blobs/sha256"
WORK=$(mktemp -d "$IMG_CACHE/work.XXXXXX")
CHROOT_MOUNTS=()
cleanup() {
  local m
  for m in "${CHROOT_MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }

# Puts a file into the blob store (hard link when possible) and prints its digest.
add_blob() { # file [digest]
  local d=${2:-$(sha256_of "$1")}
  local dst=$LAYOUT/blobs/sha256/$d
  if [[ ! -f $dst ]]; then
    ln -f "$1" "$dst" 2>/dev/null || cp "$1" "$dst"
  fi
  echo "$d"
}

# Writes a string as a blob, prints its digest.
add_json_blob() { # json
  local f=$WORK/json.$RANDOM$RANDOM
  printf '%s' "$1" >"$f"
  add_blob "$f"
}

json_str_array() { # items... -> ["a","b"]
  local out="" s
  for s in "$@"; do
    s=${s//\\/\\\\}; s=${s//\"/\\\"}
    out+="${out:+,}\"$s\""
  done
  printf '[%s]' "$out"
}

# Deterministic tar of a directory's contents (sorted, fixed mtime, numeric owners kept).
det_tar() { # dir out.tar [extra tar args...]
  local dir=$1 out=$2; shift 2
  (cd "$dir" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort) >"$WORK/toplevel"
  tar -C "$dir" --sort=name --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    "$@" -cf "$out" -T "$WORK/toplevel"
}

# ---------------------------------------------------------------- image assembly
# make_image name entrypoint-json user layer-digests... ; appends to MANIFEST_ENTRIES
MANIFEST_ENTRIES=()
ALL_MANIFESTS=()
make_image() {
  local name=$1 entrypoint=$2 user=$3; shift 3
  local diff_ids="" layers="" d
  for d in "$@"; do
    diff_ids+="${diff_ids:+,}\"sha256:$d\""
    layers+="${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:$d\",\"size\":$(size_of "$LAYOUT/blobs/sha256/$d")}"
  done
  local env
  env=$(json_str_array "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/15/bin" "LANG=C.UTF-8")
  local config="{\"architecture\":\"$ARCH\",\"os\":\"linux\",\"created\":\"1970-01-01T00:00:00Z\",\"config\":{\"User\":\"$user\",\"Env\":$env,\"Entrypoint\":$entrypoint,\"WorkingDir\":\"/\",\"Labels\":{\"org.opencontainers.image.source\":\"pgbranch\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}}"
  local cdig
  cdig=$(add_json_blob "$config")
  local manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cdig\",\"size\":${#config}},\"layers\":[$layers]}"
  local mdig
  mdig=$(add_json_blob "$manifest")
  MANIFEST_ENTRIES+=("$name sha256:$mdig ${#manifest}")
  ALL_MANIFESTS+=("sha256:$mdig")
}

# Writes an OCI archive with the images in MANIFEST_ENTRIES (each name's tag as ref.name,
# full name as io.containerd.image.name). Skips the tar when the same index was written before.
write_archive() { # out.tar
  local out=$1 entries="" e name dig size blobs=()
  for e in "${MANIFEST_ENTRIES[@]}"; do
    read -r name dig size <<<"$e"
    entries+="${entries:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$dig\",\"size\":$size,\"platform\":{\"architecture\":\"$ARCH\",\"os\":\"linux\"},\"annotations\":{\"io.containerd.image.name\":\"$name\",\"org.opencontainers.image.ref.name\":\"${name##*:}\"}}"
  done
  local index="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[$entries]}"
  local stamp=$out.index.json
  if [[ -f $out && -f $stamp && $(cat "$stamp") == "$index" ]]; then
    log "$(basename "$out") unchanged"
    return
  fi
  local dir=$WORK/archive
  rm -rf "$dir"; mkdir -p "$dir/blobs/sha256"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  printf '%s' "$index" >"$dir/index.json"
  # every blob reachable from the manifests
  for e in "${MANIFEST_ENTRIES[@]}"; do
    read -r name dig size <<<"$e"
    blobs+=("${dig#sha256:}")
    local m=$LAYOUT/blobs/sha256/${dig#sha256:}
    blobs+=($(grep -o 'sha256:[0-9a-f]\{64\}' "$m" | cut -d: -f2))
  done
  local b
  for b in $(printf '%s\n' "${blobs[@]}" | sort -u); do
    ln -f "$LAYOUT/blobs/sha256/$b" "$dir/blobs/sha256/$b" 2>/dev/null || cp "$LAYOUT/blobs/sha256/$b" "$dir/blobs/sha256/$b"
  done
  tar -C "$dir" --hard-dereference --numeric-owner --owner=0 --group=0 -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  printf '%s' "$index" >"$stamp"
  log "wrote $out ($(du -h "$out" | cut -f1))"
}

# ctr import unless containerd already has every image of MANIFEST_ENTRIES at that digest.
import_archive() { # archive
  local archive=$1 e name dig size need=0
  [[ -S $SOCK ]] || { log "no containerd socket at $SOCK (run scripts/k8s/node.sh up)"; exit 1; }
  local have
  have=$(ctr -a "$SOCK" -n k8s.io images ls 2>/dev/null | awk 'NR>1{print $1" "$3}')
  for e in "${MANIFEST_ENTRIES[@]}"; do
    read -r name dig size <<<"$e"
    grep -qxF "$name $dig" <<<"$have" || need=1
  done
  if ((need == 0)); then
    log "images of $(basename "$archive") already in containerd"
    return
  fi
  local t=$(now)
  ctr -a "$SOCK" -n k8s.io images import --all-platforms "$archive" >&2
  log "imported $(basename "$archive") in $(since "$t")"
}

# ---------------------------------------------------------------- pause image
t=$(now)
PAUSE_SRC=$HERE/pause/pause.c
PAUSE_KEY=$(cat "$PAUSE_SRC" <(gcc --version | head -1) | sha256sum | cut -c1-16)
PAUSE_LAYER=$IMG_CACHE/pause-$PAUSE_KEY.tar
if [[ ! -f $PAUSE_LAYER ]]; then
  mkdir -p "$WORK/pause"
  gcc -static -O2 -s -o "$WORK/pause/pause" "$PAUSE_SRC" || {
    log "gcc -static failed: install libc6-dev (it has libc.a)"; exit 1; }
  det_tar "$WORK/pause" "$PAUSE_LAYER.tmp" --owner=0 --group=0
  mv "$PAUSE_LAYER.tmp" "$PAUSE_LAYER"
fi
pause_layer=$(add_blob "$PAUSE_LAYER")
MANIFEST_ENTRIES=()
make_image "docker.io/pgbranch/pause:$TAG" '["/pause"]' "65535" "$pause_layer"
write_archive "$OUT/pause.oci.tar"
((DO_IMPORT)) && import_archive "$OUT/pause.oci.tar"
log "pause image in $(since "$t")"
((PAUSE_ONLY)) && exit 0

# ---------------------------------------------------------------- Debian layer (cached)
t=$(now)
PKG_FILE=$HERE/runtime-packages.txt
mapfile -t PACKAGES < <(sed 's/#.*//' "$PKG_FILE" | tr -s ' \t' '\n' | sed '/^$/d' | LC_ALL=C sort -u)
DEB_KEY=$( { echo "recipe=$DEBIAN_LAYER_RECIPE suite=$SUITE arch=$ARCH mirror=$MIRROR"; printf '%s\n' "${PACKAGES[@]}"; } | sha256sum | cut -c1-16)
DEB_LAYER=$IMG_CACHE/debian-$SUITE-$DEB_KEY.tar
if [[ ! -f $DEB_LAYER || ! -f $DEB_LAYER.sha256 ]]; then
  command -v debootstrap >/dev/null || { log "debootstrap missing (scripts/install-deps.sh)"; exit 1; }
  log "building the Debian layer ($SUITE minbase + ${#PACKAGES[@]} packages); cached as $DEB_LAYER"
  rootfs=$WORK/rootfs
  mkdir -p "$rootfs"
  t1=$(now)
  debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
  log "  debootstrap minbase: $(since "$t1")"
  t1=$(now)
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # no services start inside the chroot; no default cluster from postgresql-common; no docs
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"; chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  mkdir -p "$rootfs/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" >"$rootfs/etc/postgresql-common/createcluster.d/pgbranch.conf"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/pgbranch-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/pgbranch" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Retries "3";
EOF
  mount -t proc proc "$rootfs/proc"; CHROOT_MOUNTS+=("$rootfs/proc")
  export DEBIAN_FRONTEND=noninteractive
  chroot "$rootfs" apt-get -q update >"$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log" >&2; exit 1; }
  chroot "$rootfs" apt-get -q install -y "${PACKAGES[@]}" >>"$WORK/apt.log" 2>&1 || {
    tail -40 "$WORK/apt.log" >&2; exit 1; }
  # uid/gid 10001: the non-root user of proxy/pageserver/operator (in group postgres so it may
  # use /var/run/postgresql when it runs postgres itself)
  chroot "$rootfs" groupadd -g 10001 pgbranch
  chroot "$rootfs" useradd -u 10001 -g 10001 -G postgres -d /home/pgbranch -m -s /bin/sh pgbranch
  chroot "$rootfs" apt-get clean
  umount "$rootfs/proc"; CHROOT_MOUNTS=()
  log "  apt-get install: $(since "$t1")"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/usr/share/man "$rootfs"/tmp/* "$rootfs"/dev/*
  : >"$rootfs/etc/machine-id"
  # PostgreSQL's LLVM JIT provider is the biggest part of the image (libLLVM, libz3: ~135 MB) and
  # unused here (short OLTP queries); without it postgres runs with JIT unavailable, as jit=off.
  rm -rf "$rootfs"/usr/lib/postgresql/*/lib/llvmjit* "$rootfs"/usr/lib/postgresql/*/lib/bitcode \
    "$rootfs"/usr/lib/x86_64-linux-gnu/libLLVM-* "$rootfs"/usr/lib/x86_64-linux-gnu/libz3.so* \
    "$rootfs"/usr/lib/aarch64-linux-gnu/libLLVM-* "$rootfs"/usr/lib/aarch64-linux-gnu/libz3.so*
  t1=$(now)
  det_tar "$rootfs" "$DEB_LAYER.tmp" --xattrs --xattrs-include='security.capability'
  sha256_of "$DEB_LAYER.tmp" >"$DEB_LAYER.sha256.tmp"
  mv "$DEB_LAYER.tmp" "$DEB_LAYER"; mv "$DEB_LAYER.sha256.tmp" "$DEB_LAYER.sha256"
  rm -rf "$rootfs"
  log "  layer tar: $(since "$t1") ($(du -h "$DEB_LAYER" | cut -f1))"
fi
deb_layer=$(add_blob "$DEB_LAYER" "$(cat "$DEB_LAYER.sha256")")
log "Debian layer in $(since "$t")"

# ---------------------------------------------------------------- binaries layer
t=$(now)
mkdir -p "$WORK/bins/usr/local/bin"
found=()
for b in "${BINARIES[@]}"; do
  if [[ -x $BIN_DIR/$b ]]; then
    cp "$BIN_DIR/$b" "$WORK/bins/usr/local/bin/$b"
    chmod 0755 "$WORK/bins/usr/local/bin/$b"
    found+=("$b")
  fi
done
((${#found[@]})) || log "warning: none of ${BINARIES[*]} in $BIN_DIR (images carry only Debian)"
chmod 0755 "$WORK/bins" "$WORK/bins/usr" "$WORK/bins/usr/local" "$WORK/bins/usr/local/bin"
det_tar "$WORK/bins" "$WORK/bins.tar" --owner=0 --group=0
bin_layer=$(add_blob "$WORK/bins.tar")
log "binaries layer (${found[*]:-none}) in $(since "$t")"

# ---------------------------------------------------------------- images
t=$(now)
MANIFEST_ENTRIES=()
make_image "docker.io/pgbranch/compute:$TAG" '["/usr/local/bin/pgbranch-compute"]' "0" "$deb_layer" "$bin_layer"
make_image "docker.io/pgbranch/proxy:$TAG" '["/usr/local/bin/pgbranch-proxy"]' "10001:10001" "$deb_layer" "$bin_layer"
make_image "docker.io/pgbranch/pageserver:$TAG" '["/usr/local/bin/pgbranch-pageserver"]' "10001:10001" "$deb_layer" "$bin_layer"
make_image "docker.io/pgbranch/operator:$TAG" '["/usr/local/bin/pgbranch-operator"]' "10001:10001" "$deb_layer" "$bin_layer"
write_archive "$OUT/pgbranch.oci.tar"
log "archive in $(since "$t")"
if ((DO_IMPORT)); then
  import_archive "$OUT/pgbranch.oci.tar"
fi
# blobs of older builds (neither image of this run refers to them) leave the staging store
used=$(for e in "${ALL_MANIFESTS[@]}"; do
  d=${e#sha256:}; echo "$d"; grep -o 'sha256:[0-9a-f]\{64\}' "$LAYOUT/blobs/sha256/$d" | cut -d: -f2
done | sort -u)
for f in "$LAYOUT"/blobs/sha256/*; do
  grep -qxF "${f##*/}" <<<"$used" || rm -f "$f"
done
log "done in $(since "$T_START"): $OUT/pause.oci.tar $OUT/pgbranch.oci.tar"
