#!/usr/bin/env bash
# Sets everything up, then starts the Dagster UI and daemon on http://127.0.0.1:3000 against the
# embedded SQLite instance in dagster_home/ (or, with NH_POSTGRES_URL set, PostgreSQL storage
# configured by dagster_home/postgres/dagster.yaml).
#   bash scripts/dev.sh --demo   no Gemini credentials needed: the real CLI talks to the project's
#                                fake Gemini API on 127.0.0.1, and every output says it is fake
#   bash scripts/dev.sh          the real Gemini (GEMINI_API_KEY or a prior `gemini` login)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if [ "${1:-}" = "--demo" ]; then
  export NH_DEMO=1
  shift
fi
if [ -n "${NH_POSTGRES_URL:-}" ]; then
  # PostgreSQL storage (README, "Postgres and several machines"): its own dagster.yaml.
  export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home/postgres}"
else
  export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
fi
export NH_DATA_ROOT="${NH_DATA_ROOT:-$PWD/data}"
export NH_GEMINI_CLI="${NH_GEMINI_CLI:-$PWD/node_modules/.bin/gemini}"

mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster_home/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
.venv/bin/python -m nh_assets.registry validate >/dev/null
.venv/bin/python -m nh_assets.pools apply >/dev/null
echo "dev: DAGSTER_HOME=$DAGSTER_HOME NH_DATA_ROOT=$NH_DATA_ROOT NH_DEMO=${NH_DEMO:-0}"
echo "dev: open http://127.0.0.1:${NH_PORT:-3000} and materialize a day (Assets > Materialize all > pick a date)"
exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${NH_PORT:-3000}" "$@"
