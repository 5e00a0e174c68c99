#!/usr/bin/env bash
# Benchmarks (make bench), each reporting ratios against a baseline measured in the same run,
# loopback only and bounded in time:
#   1. locations nearby + recycling search vs a bare Starlette + asyncpg app (~1 min)
#   2. the scan pipeline with a fake model answering after 300 ms (~2 min)
#   3. chat time to first token / total with a fake model streaming at a fixed rate (~1 min)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
"$ROOT/scripts/test-services.sh"
"$PYTHON" "$ROOT/bench/bench.py" "$@"
"$PYTHON" "$ROOT/bench/scans/run.py"
"$PYTHON" "$ROOT/bench/chat.py"
