#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (unit, Dagster graph, and the real Gemini CLI
# against the project's fake Gemini API, and the Dagster UI in headless Chromium). Extra arguments go
# to pytest.
#
#   bash scripts/test.sh            the whole suite (every tier; CI runs this)
#   bash scripts/test.sh --fast     the fast tier only (pytest -m fast): in process, no apt service,
#                                   no browser; prints its wall time at the end
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
if [[ "${1:-}" == "--fast" ]]; then
    fast=1
    shift
fi
bash scripts/setup.sh
if (( fast )); then
    started=$SECONDS
    status=0
    .venv/bin/python -m pytest -m fast "$@" || status=$?
    echo "test.sh --fast: $((SECONDS - started)) s wall (load $(cut -d' ' -f1-3 /proc/loadavg))"
    exit "$status"
fi
bash scripts/install_test_services.sh   # Debian's chromium, postgresql, redis-server (apt; root or sudo)
exec .venv/bin/python -m pytest "$@"
