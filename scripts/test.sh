#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (unit, Dagster graph, and the real Gemini CLI
# against the project's fake Gemini API, and the Dagster UI in headless Chromium). Extra arguments go
# to pytest.
#
#   bash scripts/test.sh            the whole suite (every tier; CI runs this)
#   bash scripts/test.sh --fast     the fast tier only (pytest -m fast): in process, no apt service,
#                                   no browser
#   NH_TEST_WORKERS=N               pytest-xdist workers (0: one process); both print their wall time
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
    .venv/bin/python -m pytest -m fast -n "${NH_TEST_WORKERS:-2}" "$@" || status=$?
    echo "test.sh --fast: $((SECONDS - started)) s wall (load $(cut -d' ' -f1-3 /proc/loadavg))"
    exit "$status"
fi
bash scripts/install_test_services.sh   # Debian's chromium, postgresql, redis-server (apt; root or sudo)
# Workers (pytest-xdist): most tests wait on fake latencies, servers and subprocesses, so more
# workers than cores pays; NH_TEST_WORKERS=0 runs everything in this one process. A test file
# goes to one worker whole and in its order (--dist loadfile): a module-scoped fixture (one
# `dagster dev`, one materialized day) is built once, and a test may build on the one before it.
# Files go out in collection order, slowest tier first (nh_assets_tests/conftest.py), not
# reordered by size.
started=$SECONDS
status=0
.venv/bin/python -m pytest -n "${NH_TEST_WORKERS:-3}" --dist loadfile --no-loadscope-reorder "$@" || status=$?
echo "test.sh: $((SECONDS - started)) s wall (load $(cut -d' ' -f1-3 /proc/loadavg))"
exit "$status"
