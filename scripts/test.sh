#!/usr/bin/env bash
# The whole test run: installs what the tests need (Python packages, PostGIS, Chromium, GDAL), starts
# PostGIS, lints, type-checks and runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

bash scripts/setup.sh
# Chromium drives the map's browser tests; GDAL's ogrinfo/ogr2ogr are the standard clients of the feeds.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/ogrinfo ]; then
  echo "installing chromium and gdal-bin ..."
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium gdal-bin >/dev/null
fi
OBSERVATORY_TEST_DATABASE_URL="$(bash scripts/postgis.sh)"
export OBSERVATORY_TEST_DATABASE_URL

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Known vulnerable installed versions fail the run (scripts/audit_dependencies.py says what it checks).
.venv/bin/python scripts/audit_dependencies.py
# One worker per core, at most four (pytest-xdist): every test has its own schema, folder and port.
exec .venv/bin/pytest -n auto --maxprocesses=4 "$@"
