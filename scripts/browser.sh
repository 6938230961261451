#!/usr/bin/env bash
# Chromium from Debian's packages, for the tests that open the gate report in a real headless browser
# (driven by Playwright, which is told to use this binary: nothing is downloaded from a browser CDN).
# Idempotent: does nothing when chromium is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/browser.sh: no chromium on PATH and no apt-get to install it; install Chromium by hand" >&2
  exit 1
fi
SUDO=""
if [[ "$(id -u)" != "0" ]]; then SUDO="sudo"; fi
echo "==> installing Chromium (Debian package, about 30 s)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q chromium >/dev/null; }
chromium --version
