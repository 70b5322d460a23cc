#!/usr/bin/env bash
# The main job on the embedded GeoPackage store: sample data -> load -> indicators -> map server.
# Extra arguments go to `observatory demo` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/observatory demo "$@"
