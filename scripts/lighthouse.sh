#!/usr/bin/env bash
# Lighthouse scores (performance, accessibility, best practices, SEO) of a served build of 30
# synthetic days: index, a day page, search with a query, a tag page, trends and a week page.
# Uses the lighthouse pinned in package.json and Debian's Chromium; exits 1 below 95.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m benchmarks.lighthouse "$@"
