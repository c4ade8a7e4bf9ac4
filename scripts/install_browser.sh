#!/usr/bin/env bash
# Makes sure the headless browser the UI tests drive (nh_assets_tests/test_ui_browser.py) exists:
# Debian's chromium at /usr/bin/chromium (or $NH_CHROMIUM). Playwright only drives it; we never
# run `playwright install`, whose browser downloads are not reproducible and often blocked.
# Idempotent: does nothing when the browser is already there.
set -euo pipefail

CHROMIUM="${NH_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$CHROMIUM" != /usr/bin/chromium ]; then
  echo "install_browser: NH_CHROMIUM=$CHROMIUM is not an executable file" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install_browser: /usr/bin/chromium is missing and apt-get is not available;" \
    "install Chromium yourself and set NH_CHROMIUM to its path" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "install_browser: installing chromium needs root; run as root or install sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "install_browser: installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
  # The package lists may be empty or stale (fresh containers): refresh once and retry.
  "${sudo[@]}" apt-get update -qq || { echo "install_browser: apt-get update failed" >&2; exit 1; }
  "${sudo[@]}" apt-get install -y --no-install-recommends chromium \
    || { echo "install_browser: apt-get could not install chromium" >&2; exit 1; }
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "install_browser: apt-get finished but $CHROMIUM is still missing" >&2
  exit 1
fi
echo "install_browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
