#!/usr/bin/env bash
# Unit test (no builder, no network): the Containerfiles agree with scripts/images/build-images.sh
# (check_containerfiles.sh on the real tree, and it catches a wrong USER, a missing binary and a
# wrong ENTRYPOINT in mutated copies), and scripts/images/build-containerfiles.sh runs the right
# commands: --dry-run prints them, a fake podman on PATH is called with them, and with no usable
# builder (none, or docker without a daemon) it exits 2 with a message.
set -euo pipefail
ROOT=${PGBRANCH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CHECK=$HERE/check_containerfiles.sh
BUILD=$ROOT/scripts/images/build-containerfiles.sh
WORK=$(mktemp -d /tmp/containerfiles-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failed=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failed=1; }

# ---- the real tree agrees
if out=$(bash "$CHECK" "$ROOT" 2>&1); then pass "Containerfiles agree with build-images.sh"; else
  fail "Containerfiles agree with build-images.sh"; echo "$out"; fi

# ---- mutated copies are caught
copy_tree() { # dir
  local d=$1 n
  mkdir -p "$d/scripts/images" "$d/operator/k8s" "$d/compute"
  cp "$ROOT/scripts/images/build-images.sh" "$d/scripts/images/"
  cp "$ROOT/operator/k8s/pod_compute_runtime.cc" "$d/operator/k8s/"
  cp "$ROOT/compute/gated_child.cc" "$d/compute/"
  for n in operator pageserver proxy compute; do
    mkdir -p "$d/$n"; cp "$ROOT/$n/Containerfile" "$d/$n/"
  done
}
expect_mismatch() { # name want-substring sed-expr file
  local name=$1 want=$2 expr=$3 file=$4 d=$WORK/$RANDOM out
  copy_tree "$d"
  sed -i "$expr" "$d/$file"
  if out=$(bash "$CHECK" "$d" 2>&1); then fail "$name: not caught"; return; fi
  if [[ $out == *"$want"* ]]; then pass "$name: caught"; else fail "$name: wrong message: $out"; fi
}
expect_mismatch "proxy runs as root" "proxy: USER '0'" 's/^USER 10001:10001$/USER 0/' proxy/Containerfile
expect_mismatch "compute image without pagefs" "compute pods run /usr/local/bin/pagefs" \
  's# /src/build/bin/pagefs##; s#--target pgbranch-compute pagefs#--target pgbranch-compute#; s#strip build/bin/pgbranch-compute build/bin/pagefs#strip build/bin/pgbranch-compute#' \
  compute/Containerfile
expect_mismatch "compute image without the start gate" "the agent preloads libpgbranch_start_gate.so" \
  's# /src/build/bin/libpgbranch_start_gate.so##; s# pgbranch_start_gate \\$# \\#; s# build/bin/libpgbranch_start_gate.so##' \
  compute/Containerfile
expect_mismatch "compute image ships the start gate unstripped" "copies libpgbranch_start_gate.so but does not strip it" \
  's# build/bin/libpgbranch_start_gate.so##' compute/Containerfile
expect_mismatch "build-images.sh without the start gate" "which build-images.sh does not" \
  's#^BINARIES=(\(.*\) libpgbranch_start_gate.so)$#BINARIES=(\1)#' scripts/images/build-images.sh
expect_mismatch "operator ENTRYPOINT differs" "operator: ENTRYPOINT" \
  's#^ENTRYPOINT .*#ENTRYPOINT ["/usr/local/bin/pgbranch-proxy"]#' operator/Containerfile
expect_mismatch "pageserver ships a binary build-images.sh lacks" "which build-images.sh does not" \
  's#^BINARIES=(\(.*\) pagectl \(.*\))$#BINARIES=(\1 \2)#' scripts/images/build-images.sh

# ---- build-containerfiles.sh
# A PATH with only the tools the script needs (and, per case, a fake builder).
mkdir -p "$WORK/tools"
for t in bash sed dirname timeout cat tr; do ln -s "$(command -v "$t")" "$WORK/tools/$t"; done
run_build() { # extra-path-dir args...
  local extra=$1; shift
  env -i PATH="$extra:$WORK/tools" HOME="$WORK" bash "$BUILD" "$@"
}
mkdir -p "$WORK/none"
set +e
out=$(run_build "$WORK/none" 2>&1); rc=$?
set -e
if ((rc == 2)) && [[ $out == *"no usable container builder"* && $out == *build-images.sh* ]]; then
  pass "no builder: exit 2 with what to do"; else fail "no builder: rc=$rc: $out"; fi

mkdir -p "$WORK/docker-no-daemon"
printf '#!/bin/sh\n[ "$1" = info ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }\nexit 0\n' \
  >"$WORK/docker-no-daemon/docker"
chmod +x "$WORK/docker-no-daemon/docker"
set +e
out=$(run_build "$WORK/docker-no-daemon" --tool docker 2>&1); rc=$?
set -e
if ((rc == 2)) && [[ $out == *"daemon does not answer"* ]]; then
  pass "docker without a daemon: exit 2"; else fail "docker without a daemon: rc=$rc: $out"; fi

want=""
for n in operator pageserver proxy compute; do
  want+="docker build --file $ROOT/$n/Containerfile --tag ghcr.io/acme/pgbranch/$n:1.2.3 $ROOT"$'\n'
  want+="docker push ghcr.io/acme/pgbranch/$n:1.2.3"$'\n'
done
out=$(run_build "$WORK/none" --dry-run --registry ghcr.io/acme/ --tag 1.2.3 --push 2>/dev/null)
if [[ $out$'\n' == "$want" ]]; then pass "--dry-run prints the exact commands"; else
  fail "--dry-run prints the exact commands"; diff <(echo "$want") <(echo "$out") || true; fi

# A fake podman records its arguments; the script picks it and calls it per image.
mkdir -p "$WORK/podman"
printf '#!/bin/sh\necho "$*" >>"%s/podman.calls"\n' "$WORK" >"$WORK/podman/podman"
chmod +x "$WORK/podman/podman"
if run_build "$WORK/podman" --only proxy,compute >/dev/null 2>&1 &&
   [[ $(cat "$WORK/podman.calls") == "build --file $ROOT/proxy/Containerfile --tag docker.io/pgbranch/proxy:dev $ROOT"$'\n'"build --file $ROOT/compute/Containerfile --tag docker.io/pgbranch/compute:dev $ROOT" ]]; then
  pass "podman found on PATH builds the chosen images"
else
  fail "podman found on PATH builds the chosen images: $(cat "$WORK/podman.calls" 2>&1)"
fi
set +e
out=$(run_build "$WORK/none" --tool nerdctl 2>&1); rc=$?
set -e
((rc == 2)) && [[ $out == *"docker, podman or buildah"* ]] && pass "unknown --tool: exit 2" ||
  fail "unknown --tool: rc=$rc: $out"

((failed == 0)) && echo "PASS containerfiles_test" || { echo "FAIL containerfiles_test"; exit 1; }
