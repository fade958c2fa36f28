#!/usr/bin/env bash
# Set everything up (virtualenv, package, Chromium for the browser tests) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "==> installing Debian's chromium for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get); browser tests will be skipped" >&2
    fi
fi
exec .venv/bin/python -m pytest "$@"
