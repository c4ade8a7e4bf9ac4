#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (unit, Dagster graph, and the real Gemini CLI
# against the project's fake Gemini API, and the Dagster UI in headless Chromium). Extra arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_test_services.sh   # Debian's chromium, postgresql, redis-server (apt; root or sudo)
exec .venv/bin/python -m pytest "$@"
