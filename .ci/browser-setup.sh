#!/usr/bin/env bash
# Prepare the browser tests (tests/test_ui_browser.py): Debian's Chromium and the Playwright
# driver from the 'browser' extra. Never downloads a browser build (Playwright only drives
# /usr/bin/chromium). Idempotent; never fails the build: without Chromium the browser tests are
# skipped with the reason (and fail instead under MLTRAINER_REQUIRE_EXTRAS=1).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
say() { echo "[browser-setup] $*"; }

if command -v chromium >/dev/null; then
    say "Chromium: $(chromium --version 2>/dev/null)"
elif command -v apt-get >/dev/null; then
    if [ ! -f /tmp/.mltrainer-apt-updated ]; then
        $SUDO apt-get update -qq >/dev/null 2>&1 && touch /tmp/.mltrainer-apt-updated
    fi
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; then
        say "Chromium: installed $(chromium --version 2>/dev/null)"
    else
        say "Chromium: could not install Debian's chromium; the browser tests will be skipped"
    fi
else
    say "Chromium: no apt-get here; the browser tests will be skipped"
fi

cd "$REPO"
[ -x .venv/bin/pip ] || python3 -m venv .venv
if .venv/bin/pip install -q -e '.[browser]' >/dev/null 2>&1; then
    say "Playwright: $(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))')"
else
    say "Playwright: could not install the 'browser' extra; the browser tests will be skipped"
fi
exit 0
