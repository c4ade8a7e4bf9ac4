#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite (unit, Dagster graph, and the real Gemini CLI
# against the project's fake Gemini API). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
