#!/usr/bin/env bash
# Installs every Debian package pgbranch needs. Idempotent: packages already present are skipped,
# and apt-get is not touched at all when nothing is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcpprest-dev libyaml-cpp-dev prometheus-cpp-dev libgtest-dev libgmock-dev
  libfuse3-dev fuse3 libssl-dev libabsl-dev zlib1g-dev libcli11-dev
  postgresql-15 postgresql-contrib postgresql-client-15
  curl ca-certificates procps psmisc openssl libpq5 libpq-dev
  etcd-server
  containerd runc containernetworking-plugins iptables nftables debootstrap libc6-dev
  lua5.1
  python3-yaml
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
