#!/usr/bin/env bash
# README command 1: installs what is needed, builds, starts local mode and shows branching:
#   1. `pgbranch local up`: pageserver, controller and proxy in the background;
#   2. a `main` branch (a new database, with a compute that scales to zero) loaded with the
#      ecommerce sample (customers 100, products 50, orders 200, order_items 500);
#   3. a `dev` branch of main, made while main runs (copy-on-write, timed);
#   4. an insert on dev: dev counts 101 customers, main still 100;
#   5. connection strings to paste into psql. Local mode keeps running for docs/quickstart.md;
#      `scripts/demo.sh --down` stops it.
# State: $PGBRANCH_HOME (default /var/lib/pgbranch-demo), wiped at each run of the demo.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${PGBRANCH_BUILD_DIR:-$ROOT/build}
export PGBRANCH_HOME=${PGBRANCH_HOME:-/var/lib/pgbranch-demo}
PG=${BUILD}/bin/pgbranch
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "demo.sh needs root (FUSE mounts; PostgreSQL runs as postgres): sudo $0"; exit 1; }

if [ "${1:-}" = "--down" ]; then
  [ -x "$PG" ] && "$PG" local down
  exit 0
fi

if [ -z "${PGBRANCH_SKIP_BUILD:-}" ]; then  # set by tests/docs, which runs on a built tree
  say "Installing packages and building (the first run takes a few minutes)"
  "$ROOT/scripts/build.sh" pgbranch pgbranch-pageserver pgbranch-proxy pgbranch-compute pagefs pagectl
fi

# A previous demo: stop it and start from scratch.
if [ -e "$PGBRANCH_HOME/local.json" ]; then "$PG" local down >/dev/null || true; fi
rm -rf "$PGBRANCH_HOME"

say "pgbranch local up (state in $PGBRANCH_HOME)"
"$PG" local up --proxy-port "${PGBRANCH_PROXY_PORT:-55432}"

say "A main branch: a new PostgreSQL 15 database with its own compute"
"$PG" branch create main --protected
MAIN=$("$PG" connstr main)
psql "$MAIN" -X -q -v ON_ERROR_STOP=1 -f "$ROOT/scripts/sql/ecommerce.sql"
psql "$MAIN" -X -At -c "select 'main: customers=' || (select count(*) from ecommerce.customers) || ' products=' || (select count(*) from ecommerce.products) || ' orders=' || (select count(*) from ecommerce.orders) || ' order_items=' || (select count(*) from ecommerce.order_items)"

say "A dev branch of main, taken while main runs (copy-on-write: schema and data)"
"$PG" branch create dev --parent main
DEV=$("$PG" connstr dev)

say "Isolation: a new customer on dev only"
psql "$DEV" -X -q -c "insert into ecommerce.customers (name, email) values ('Dev Tester', 'dev@example.com')"
echo "dev:  customers=$(psql "$DEV" -X -At -c 'select count(*) from ecommerce.customers')"
echo "main: customers=$(psql "$MAIN" -X -At -c 'select count(*) from ecommerce.customers')"

say "Branches and endpoints"
"$PG" branch list
echo
"$PG" endpoint list

say "Connect (endpoints suspend after 5 minutes idle and wake on the next connection)"
echo "  psql '$MAIN'"
echo "  psql '$DEV'"
echo
echo "Next: docs/quickstart.md. In this shell:"
echo "  export PGBRANCH_HOME=$PGBRANCH_HOME PATH=$BUILD/bin:\$PATH"
echo "Stop everything: scripts/demo.sh --down (data stays in $PGBRANCH_HOME until the next demo)"
