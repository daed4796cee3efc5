#!/usr/bin/env bash
# Runs every shell example of the user docs as written, in order, against a real local instance:
#   docs/quickstart.md  after scripts/demo.sh's setup (the state the quick start continues from)
#   docs/promotion.md   after the quick start, on the same instance
#   README.md           the "Local mode" section, from a fresh state directory; then its
#                       pageserver and pagefs sections, in one shell
#   docs/pageserver.md  the pageserver and pagectl by hand
# The ```sh blocks run in one bash session per document (`set -euo pipefail`, so an example that
# fails fails the test, naming its line). A ```yaml block whose first line is `# FILE` is saved
# to FILE before the commands run, as a reader would save it. A block right after `<!-- not run: REASON -->` is
# skipped (say why in REASON).
# Usage: run-doc-examples.sh BUILD_DIR   (needs root and /dev/fuse, like local mode)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: run-doc-examples.sh BUILD_DIR}" && pwd)
WORK=$(mktemp -d /tmp/pgbranch-docs.XXXXXX)
chmod 711 "$WORK"  # PostgreSQL runs as postgres in the state directories under it
HOMES=()
cleanup() {
  for h in "${HOMES[@]}"; do
    PGBRANCH_HOME=$h "$BUILD/bin/pgbranch" local down >/dev/null 2>&1 || true
    rm -rf "$h"
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Turns the examples of $1 (optionally only between the headings matching $2 and the next
# heading of the same level) into a bash script on stdout.
extract() {
  awk -v section="${2:-}" '
    function heading_level(line) { match(line, /^#+/); return RLENGTH }
    /^#+ / && !inblock {
      if (section != "") {
        if (index($0, section) > 0) { active = 1; level = heading_level($0); next }
        if (active && heading_level($0) <= level) active = 0
      }
    }
    section == "" { active = 1 }
    /^<!-- not run:/ { skipnext = 1; next }
    /^```/ && !inblock {
      lang = substr($0, 4); inblock = 1; first = 1; body = ""; startline = NR; next
    }
    /^```/ && inblock {
      inblock = 0
      if (!active || skipnext) { skipnext = 0; next }
      if (lang == "sh") {
        script = script sprintf("echo \"+++ %s:%d\"\n%s\n", FILENAME, startline, body)
      } else if (lang == "yaml" && file != "") {
        files = files sprintf("cat > %s <<'"'"'PGBRANCH_DOC_EOF'"'"'\n%sPGBRANCH_DOC_EOF\n", file, body)
      }
      file = ""; next
    }
    inblock {
      if (first && lang == "yaml" && $0 ~ /^# [A-Za-z0-9._-]+\.ya?ml$/) file = substr($0, 3)
      first = 0
      body = body $0 "\n"
    }
    # The files a document shows are saved before its commands run, as a reader would.
    END { printf "%s%s", files, script }
  ' "$1"
}

# What a reader types from the repository's top, pointed at the build under test: build/bin/X is
# $BUILD/bin/X, and `scripts/build.sh` (the tree is built) is skipped.
as_built() {
  sed -e "s#\$PWD/build/bin#$BUILD/bin#g" -e "s#build/bin/#$BUILD/bin/#g" \
    -e "s#^scripts/build.sh.*#: built already#"
}

run_doc() {  # name, script
  local name=$1 script=$2
  echo "=== $name: $(grep -c '^echo "+++ ' "$script") example blocks"
  (cd "$WORK" && PATH="$BUILD/bin:$PATH" bash -euo pipefail "$script" </dev/null) || {
    echo "FAILED: an example of $name did not run as written (the last '+++' line names it)"
    exit 1
  }
}

# --- docs/quickstart.md: continues from scripts/demo.sh -------------------------------------
export PGBRANCH_HOME=$WORK/quickstart-home
HOMES+=("$PGBRANCH_HOME")
echo "=== scripts/demo.sh (the quick start's starting point)"
PGBRANCH_BUILD_DIR=$BUILD PGBRANCH_PROXY_PORT=0 PGBRANCH_SKIP_BUILD=1 "$ROOT/scripts/demo.sh" >"$WORK/demo.log" 2>&1 || {
  cat "$WORK/demo.log"
  exit 1
}
# The quick start's first block exports PGBRANCH_HOME for the reader; keep the test's own.
extract "$ROOT/docs/quickstart.md" | as_built |
  sed "s#^export PGBRANCH_HOME=[^ ]*#export PGBRANCH_HOME=$PGBRANCH_HOME#" >"$WORK/quickstart.sh"
(cd "$ROOT" && run_doc docs/quickstart.md "$WORK/quickstart.sh")
# docs/promotion.md continues from the quick start's state (main protected, the sample loaded).
extract "$ROOT/docs/promotion.md" | as_built |
  sed "s#^export PGBRANCH_HOME=[^ ]*#export PGBRANCH_HOME=$PGBRANCH_HOME#" >"$WORK/promotion.sh"
(cd "$ROOT" && run_doc docs/promotion.md "$WORK/promotion.sh")
"$BUILD/bin/pgbranch" local down >/dev/null

# --- README.md, "Local mode": from nothing ---------------------------------------------------
export PGBRANCH_HOME=$WORK/readme-home
HOMES+=("$PGBRANCH_HOME")
# `local up` as written listens on 55432, which other tests' endpoints (ephemeral ports) may
# hold at that moment: the kernel picks the proxy's port here.
extract "$ROOT/README.md" "Local mode" | as_built |
  sed 's#^pgbranch local up #pgbranch local up --proxy-port 0 #' >"$WORK/readme.sh"
(cd "$ROOT" && run_doc "README.md (Local mode)" "$WORK/readme.sh")

# --- README.md, "Using the pageserver" and "PostgreSQL on a branch": one shell, like a reader's --
unset PGBRANCH_HOME
{
  extract "$ROOT/README.md" "Using the pageserver"
  extract "$ROOT/README.md" "PostgreSQL on a branch"
} | as_built >"$WORK/storage.sh"
# Run from the repository's top, as the README says (paths are build/bin/..., docs/).
(cd "$ROOT" && PATH="$BUILD/bin:$PATH" bash -euo pipefail "$WORK/storage.sh" </dev/null) || {
  echo "FAILED: an example of README.md (pageserver/pagefs) did not run as written"
  for m in /mnt/main-before /mnt/pg; do fusermount3 -u "$m" 2>/dev/null || true; done
  pkill -f "listen 127.0.0.1:6400" || true
  exit 1
}

# --- docs/pageserver.md: the pageserver and pagectl by hand -------------------------------------
extract "$ROOT/docs/pageserver.md" | as_built >"$WORK/pageserver.sh"
(cd "$ROOT" && PATH="$BUILD/bin:$PATH" bash -euo pipefail "$WORK/pageserver.sh" </dev/null) || {
  echo "FAILED: an example of docs/pageserver.md did not run as written"
  pkill -f "listen 127.0.0.1:6400" || true
  exit 1
}
echo "every documented example ran as written"
