#!/usr/bin/env bash
# Sets everything up, then starts the Dagster UI and daemon on http://127.0.0.1:3000 against the
# embedded SQLite instance in dagster_home/ (or, with NH_POSTGRES_URL set, PostgreSQL storage
# configured by dagster_home/postgres/dagster.yaml).
#   bash scripts/dev.sh --demo   no Gemini credentials needed: the project's fake Gemini API runs
#                                on 127.0.0.1 beside Dagster, the real CLI talks to it, and every
#                                output says it is fake
#   bash scripts/dev.sh          the real Gemini (GEMINI_API_KEY or a prior `gemini` login)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

demo=0
if [ "${1:-}" = "--demo" ]; then
  demo=1
  shift
fi
if [ -n "${NH_POSTGRES_URL:-}" ]; then
  # PostgreSQL storage (docs/deployment.md): its own dagster.yaml.
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

if [ "$demo" = 1 ]; then
  # The fake API is a process of its own; the pipeline only sees its URL (NH_GEMINI_API_URL).
  port="${NH_DEMO_PORT:-8765}"
  ready="$(mktemp)"
  # It prints its URL once it listens; a taken port makes it exit with the reason instead.
  .venv/bin/python -m nh_assets.demo --port "$port" >"$ready" &
  demo_pid=$!
  trap 'kill "$demo_pid" 2>/dev/null || true; rm -f "$ready"' EXIT
  for _ in $(seq 100); do
    [ -s "$ready" ] && break
    kill -0 "$demo_pid" 2>/dev/null || { echo "dev: the demo API did not start on port $port (set NH_DEMO_PORT to a free port)" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$ready" ] || { echo "dev: the demo API did not answer within 10 s" >&2; exit 1; }
  export NH_DEMO=1 NH_GEMINI_API_URL="http://127.0.0.1:$port"
fi
echo "dev: DAGSTER_HOME=$DAGSTER_HOME NH_DATA_ROOT=$NH_DATA_ROOT NH_DEMO=${NH_DEMO:-0} ${NH_GEMINI_API_URL:+NH_GEMINI_API_URL=$NH_GEMINI_API_URL}"
echo "dev: open http://127.0.0.1:${NH_PORT:-3000} and materialize a day (Assets > Materialize all > pick a date)"
if [ "$demo" = 1 ]; then
  # Not exec: the trap above stops the demo API when Dagster stops.
  .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${NH_PORT:-3000}" "$@"
else
  exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${NH_PORT:-3000}" "$@"
fi
