#!/usr/bin/env bash
# Application benchmark (make bench): locations nearby and recycling search vs a bare
# Starlette + asyncpg baseline. Loopback only; about a minute.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
"$ROOT/scripts/test-services.sh"
exec "$PYTHON" "$ROOT/bench/bench.py" "$@"
