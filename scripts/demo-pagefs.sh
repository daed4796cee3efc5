#!/usr/bin/env bash
# The storage-level demo (no control plane): installs, builds, and shows copy-on-write branching of a
# running PostgreSQL 15 database:
#   1. pgbranch-pageserver starts; pagefs mounts timeline `main` of tenant `demo`;
#   2. PostgreSQL runs on the mount with the `ecommerce` sample (customers 100, products 50,
#      orders 200, order_items 500);
#   3. a `dev` branch is taken while it runs (metadata only: timed), mounted, and a second
#      PostgreSQL starts on it;
#   4. a customer inserted on dev: dev counts 101, main still 100;
#   5. a branch of main as of a time before the sample was loaded (point in time) has no schema.
# Flags: --keep leaves everything running and prints the connection strings.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PGBRANCH_BUILD_DIR:-$ROOT/build}
STATE=${PGBRANCH_DEMO_DIR:-/tmp/pgbranch-demo}
PGBIN=/usr/lib/postgresql/15/bin
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
as_pg() { runuser -u postgres -- "$@"; }
[ "$(id -u)" -eq 0 ] || { echo "demo.sh needs root (FUSE mounts; PostgreSQL runs as postgres)"; exit 1; }

say "Installing packages and building (the first run takes a few minutes)"
"$ROOT/scripts/build.sh" pgbranch-pageserver pagectl pagefs

# A previous demo may still be mounted or running.
for m in main dev before; do
  [ -f "$STATE/mnt-$m/pgdata/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$STATE/mnt-$m/pgdata" -m immediate stop >/dev/null 2>&1 || true
  fusermount3 -uz "$STATE/mnt-$m" 2>/dev/null || true
done
[ -f "$STATE/pageserver.pid" ] && kill "$(cat "$STATE/pageserver.pid")" 2>/dev/null || true
rm -rf "$STATE" && mkdir -p "$STATE/sock" "$STATE/logs" && chmod 777 "$STATE/sock" "$STATE/logs"
PAGECTL="$BUILD/bin/pagectl"

cleanup() {
  [ $KEEP -eq 1 ] && return
  for m in dev before main; do
    as_pg "$PGBIN/pg_ctl" -D "$STATE/mnt-$m/pgdata" -m fast stop >/dev/null 2>&1 || true
    fusermount3 -u "$STATE/mnt-$m" 2>/dev/null || true
  done
  kill "$(cat "$STATE/pageserver.pid")" 2>/dev/null || true
}
trap cleanup EXIT

say "Starting pgbranch-pageserver (data in $STATE/pageserver)"
"$BUILD/bin/pgbranch-pageserver" --data-dir "$STATE/pageserver" --listen 127.0.0.1:0 \
  --port-file "$STATE/pageserver.port" --log-level warning >"$STATE/pageserver.log" 2>&1 &
echo $! >"$STATE/pageserver.pid"
for _ in $(seq 200); do [ -s "$STATE/pageserver.port" ] && break; sleep 0.05; done
export PGBRANCH_PAGESERVER="127.0.0.1:$(cat "$STATE/pageserver.port")"
echo "pageserver at $PGBRANCH_PAGESERVER"
"$PAGECTL" tenant create --id demo --root-timeline main

mount_branch() {  # mount_branch NAME [pagefs flags...]
  local name=$1; shift
  mkdir -p "$STATE/mnt-$name"
  "$BUILD/bin/pagefs" --pageserver "$PGBRANCH_PAGESERVER" --tenant demo --timeline "$name" \
    --log-level warning "$@" "$STATE/mnt-$name"
}
start_pg() {  # start_pg NAME PORT
  rm -f "$STATE/mnt-$1/pgdata/postmaster.pid"  # a branch copies its parent's lock file
  as_pg "$PGBIN/pg_ctl" -D "$STATE/mnt-$1/pgdata" -l "$STATE/logs/pg-$1.log" -w \
    -o "-k $STATE/sock -p $2 -c listen_addresses='' -c shared_buffers=64MB" start >/dev/null
}
psql_at() { as_pg psql -h "$STATE/sock" -p "$1" -U postgres -At -v ON_ERROR_STOP=1 -c "$2"; }

say "PostgreSQL 15 on pagefs: timeline main"
mount_branch main
mkdir "$STATE/mnt-main/pgdata" && chown postgres "$STATE/mnt-main/pgdata"
as_pg "$PGBIN/initdb" -D "$STATE/mnt-main/pgdata" -U postgres -A trust >/dev/null
start_pg main 55432
BEFORE_SAMPLE=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
sleep 0.01
as_pg psql -h "$STATE/sock" -p 55432 -U postgres -q -v ON_ERROR_STOP=1 -f "$ROOT/scripts/sql/ecommerce.sql"
psql_at 55432 "CHECKPOINT"
psql_at 55432 "select 'main: customers='||(select count(*) from ecommerce.customers)||' products='||(select count(*) from ecommerce.products)||' orders='||(select count(*) from ecommerce.orders)||' order_items='||(select count(*) from ecommerce.order_items)"

say "Branching dev from main while main runs (copy-on-write, metadata only)"
start_ns=$(date +%s%N)
"$PAGECTL" -q timeline create --tenant demo --id dev --parent main >/dev/null
echo "branch created in $(( ($(date +%s%N) - start_ns) / 1000000 )) ms, including pagectl's process start"
mount_branch dev
start_pg dev 55433

say "Isolation: a new customer on dev only"
psql_at 55433 "insert into ecommerce.customers (name, email) values ('Dev Tester', 'dev@example.com')" >/dev/null
echo "dev:  customers=$(psql_at 55433 'select count(*) from ecommerce.customers')"
echo "main: customers=$(psql_at 55432 'select count(*) from ecommerce.customers')"

say "Point in time: a branch of main as of $BEFORE_SAMPLE (before the sample was loaded)"
"$PAGECTL" -q timeline create --tenant demo --id before --parent main --at "$BEFORE_SAMPLE" >/dev/null
mount_branch before
start_pg before 55434
echo "before: ecommerce schema present? $(psql_at 55434 "select exists(select 1 from information_schema.schemata where schema_name='ecommerce')")"

say "Branches"
"$PAGECTL" timeline list --tenant demo

if [ $KEEP -eq 1 ]; then
  say "Still running; connect with"
  for p in "main 55432" "dev 55433" "before 55434"; do
    set -- $p
    echo "  $1: psql 'host=$STATE/sock port=$2 user=postgres dbname=postgres'"
  done
  echo "  (PGBRANCH_PAGESERVER=$PGBRANCH_PAGESERVER; stop: scripts/demo.sh cleans up on its next run)"
fi
