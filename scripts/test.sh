#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs it:
# system packages for the window test (Xvfb, xdotool, xwd) and kernel tracing (perf) (when we are root on a
# Debian-like system), a virtual environment with procsim and its extras, then
# the linters and the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
command -v xdotool >/dev/null 2>&1 || missing+=(xdotool)
command -v xwd >/dev/null 2>&1 || missing+=(x11-apps)
command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed; the tests that need them will be skipped" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[viz,dev]'
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest "$@"
