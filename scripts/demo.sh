#!/usr/bin/env bash
# README command 1: installs what is needed, builds, and shows copy-on-write branching of a real
# PostgreSQL database in the pageserver:
#   1. a PostgreSQL 15 data directory with the `ecommerce` sample (customers 100, products 50,
#      orders 200, order_items 500) is imported into the `main` timeline of tenant `demo`;
#   2. a `dev` branch is created (metadata only: timed), plus a branch as of a time before the
#      import (point in time: empty);
#   3. `dev` is exported as it is and PostgreSQL runs on the export and answers.
# Until pagefs (P2) mounts branches directly, the export step stands in for a mount.
# Flags: --keep leaves the pageserver running (its address is printed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PGBRANCH_BUILD_DIR:-$ROOT/build}
STATE=${PGBRANCH_DEMO_DIR:-/tmp/pgbranch-demo}
PGBIN=/usr/lib/postgresql/15/bin
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

say "Installing packages and building (first run takes a few minutes)"
"$ROOT/scripts/build.sh" pgbranch-pageserver pagectl

rm -rf "$STATE" && mkdir -p "$STATE"
[ "$(id -u)" -eq 0 ] && chown postgres "$STATE"
PAGECTL="$BUILD/bin/pagectl"

say "Starting pgbranch-pageserver (data in $STATE/pageserver)"
"$BUILD/bin/pgbranch-pageserver" --data-dir "$STATE/pageserver" --listen 127.0.0.1:0 \
  --port-file "$STATE/pageserver.port" --log-level warning >"$STATE/pageserver.log" 2>&1 &
PS_PID=$!
echo $PS_PID >"$STATE/pageserver.pid"
cleanup() { [ $KEEP -eq 1 ] || kill "$PS_PID" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$STATE/pageserver.port" ] && break; sleep 0.05; done
export PGBRANCH_PAGESERVER="127.0.0.1:$(cat "$STATE/pageserver.port")"
echo "pageserver at $PGBRANCH_PAGESERVER"

say "Creating a PostgreSQL 15 database with the ecommerce sample"
PGDATA="$STATE/source-pgdata"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -o "-k $STATE -p 55432 -c listen_addresses=''" -w -l "$STATE/source.log" start >/dev/null
as_pg psql -h "$STATE" -p 55432 -U postgres -q -v ON_ERROR_STOP=1 -f "$ROOT/scripts/sql/ecommerce.sql"
as_pg psql -h "$STATE" -p 55432 -U postgres -At -c \
  "select 'customers='||(select count(*) from ecommerce.customers)||' products='||(select count(*) from ecommerce.products)||' orders='||(select count(*) from ecommerce.orders)||' order_items='||(select count(*) from ecommerce.order_items)"
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null

say "Importing it into tenant demo, timeline main"
"$PAGECTL" tenant create --id demo --root-timeline main
sleep 0.01
BEFORE_IMPORT=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
"$PAGECTL" import --tenant demo --timeline main "$PGDATA"

say "Branching: dev from main (copy-on-write, metadata only)"
start_ns=$(date +%s%N)
"$PAGECTL" timeline create --tenant demo --id dev --parent main
echo "branch created in $(( ($(date +%s%N) - start_ns) / 1000000 )) ms, including pagectl's process start"

say "Point in time: a branch of main as of $BEFORE_IMPORT (before the import)"
"$PAGECTL" timeline create --tenant demo --id before-import --parent main --at "$BEFORE_IMPORT"
"$PAGECTL" timeline list --tenant demo

say "Running PostgreSQL on the dev branch (exported)"
DEV="$STATE/dev-pgdata"
"$PAGECTL" export --tenant demo --timeline dev "$DEV"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$DEV"
chmod 700 "$DEV"
as_pg "$PGBIN/pg_ctl" -D "$DEV" -o "-k $STATE -p 55433 -c listen_addresses=''" -w -l "$STATE/dev.log" start >/dev/null
as_pg psql -h "$STATE" -p 55433 -U postgres -At -c \
  "select 'dev: customers='||count(*) from ecommerce.customers"
as_pg "$PGBIN/pg_ctl" -D "$DEV" -m fast -w stop >/dev/null

say "Sizes: a new branch shares every page with its parent"
"$PAGECTL" timeline info --tenant demo dev
if [ $KEEP -eq 1 ]; then
  echo; echo "The pageserver keeps running: export PGBRANCH_PAGESERVER=$PGBRANCH_PAGESERVER"
  echo "Stop it with: kill $PS_PID"
fi
