#!/usr/bin/env bash
# Installs (when missing) and starts a local PostgreSQL 15 + PostGIS 3 for the tests, and prints the
# database URL to use. Idempotent: safe to run again with the cluster already up.
set -euo pipefail

DB_NAME="${OBSERVATORY_TEST_DB:-observatory_test}"
DB_PASSWORD="${OBSERVATORY_TEST_DB_PASSWORD:-observatory}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -f /usr/share/postgresql/15/extension/postgis.control ]; then
  echo "installing postgresql-15-postgis-3 ..." >&2
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql-15 postgresql-15-postgis-3 >&2
fi

if ! pg_lsclusters -h 2>/dev/null | awk '$1 == 15 && $2 == "main"' | grep -q .; then
  as_root pg_createcluster 15 main >&2
fi
if ! pg_lsclusters -h | awk '$1 == 15 && $2 == "main" {print $4}' | grep -q online; then
  as_root pg_ctlcluster 15 main start >&2
fi

psql_admin() { as_root su postgres -c "PGOPTIONS=--client-min-messages=warning psql -v ON_ERROR_STOP=1 -qAtX $*"; }
for _ in $(seq 1 30); do psql_admin "-c 'select 1'" >/dev/null 2>&1 && break; sleep 1; done
psql_admin "-c \"ALTER USER postgres PASSWORD '${DB_PASSWORD}'\"" >/dev/null
if [ "$(psql_admin "-c \"SELECT 1 FROM pg_database WHERE datname = '${DB_NAME}'\"")" != 1 ]; then
  psql_admin "-c 'CREATE DATABASE ${DB_NAME}'" >/dev/null
fi
psql_admin "-d ${DB_NAME} -c 'CREATE EXTENSION IF NOT EXISTS postgis'" >/dev/null

echo "postgresql://postgres:${DB_PASSWORD}@127.0.0.1:5432/${DB_NAME}"
