#!/usr/bin/env bash
# Makes sure the real programs the tests drive exist, from Debian's packages (apt):
#   chromium     headless browser for the UI tests (nh_assets_tests/e2e/test_ui_browser.py); Playwright
#                only drives it, we never run `playwright install` (unreproducible downloads);
#   postgresql   a real PostgreSQL server: the tests start private clusters with initdb/pg_ctl
#                (nh_assets_tests/support/postgres_server.py); the Debian service itself is not used;
#   redis-server the Celery broker of the multi-machine deployment test (deploy/celery/).
# Idempotent: does nothing when everything is already there. Needs root or sudo to install.
set -euo pipefail

CHROMIUM="${NH_CHROMIUM:-/usr/bin/chromium}"
if [ "$CHROMIUM" != /usr/bin/chromium ] && [ ! -x "$CHROMIUM" ]; then
  echo "install_test_services: NH_CHROMIUM=$CHROMIUM is not an executable file" >&2
  exit 1
fi

missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "install_test_services: missing ${missing[*]} and apt-get is not available;" \
    "install them yourself (NH_CHROMIUM sets the browser's path)" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install_test_services: installing ${missing[*]} needs root; run as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install_test_services: installing Debian's ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  # The package lists may be empty or stale (fresh containers): refresh once and retry.
  "${sudo[@]}" apt-get update -qq || { echo "install_test_services: apt-get update failed" >&2; exit 1; }
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" \
    || { echo "install_test_services: apt-get could not install ${missing[*]}" >&2; exit 1; }
fi
[ -x "$CHROMIUM" ] || { echo "install_test_services: apt-get finished but $CHROMIUM is still missing" >&2; exit 1; }
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  || { echo "install_test_services: apt-get finished but initdb is still missing" >&2; exit 1; }
echo "install_test_services: $("$CHROMIUM" --version 2>/dev/null || echo chromium);" \
  "$(ls -d /usr/lib/postgresql/*/bin | tail -1); $(redis-server --version | cut -d' ' -f1-3)"
