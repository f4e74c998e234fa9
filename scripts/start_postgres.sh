#!/usr/bin/env bash
# Start a local PostgreSQL on loopback for the tests (Debian packages) and print its URL on the last line.
# Installs the server when missing (as root). Idempotent.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "need root to install postgresql" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | awk '{print $2}' | grep -qx main || pg_createcluster "$ver" main >/dev/null
pg_ctlcluster "$ver" main start 2>/dev/null || true
port=$(pg_lsclusters -h | awk '$2=="main"{print $3}' | head -1)
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
psql_() { su postgres -c "psql -p $port -qtAc \"$1\""; }
[ "$(psql_ "SELECT 1 FROM pg_roles WHERE rolname='asym'")" = 1 ] || psql_ "CREATE ROLE asym LOGIN PASSWORD 'asym'"
# the tests create (and drop) a fresh database per run, and a role without rights
psql_ "ALTER ROLE asym CREATEDB CREATEROLE"
[ "$(psql_ "SELECT 1 FROM pg_database WHERE datname='asymllic_test'")" = 1 ] || psql_ "CREATE DATABASE asymllic_test OWNER asym"
echo "postgresql://asym:asym@127.0.0.1:$port/asymllic_test"
