#!/usr/bin/env bash
# Set everything up (virtualenv, package, Node tools, Chromium for the browser tests) and run the checks
# in three stages that stop at the first failure:
#   1. lint     ruff check, ruff format --check, prettier --check, the frontend's node --test suite
#   2. tests    every non-browser test; then the numerically sensitive ones again on one thread
#               (OMP/MKL_NUM_THREADS=1: another order of float reductions, as on another CPU)
#   3. browser  the real TensorBoard and headless Chromium
# Extra arguments run pytest alone with them (bash scripts/test.sh tests/callbacks -x).
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

if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi

stage() { printf '\n==> stage %s\n' "$1"; }

stage "1/3: lint"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
npx --no-install prettier --check frontend tests/frontend
node --test tests/frontend/

stage "2/3: tests"
.venv/bin/python -m pytest -q -m "not browser"
# The tests whose numbers depend on the order of floating-point reductions (marked numeric: tests/analysis
# and the trained-model tests; tests/README.md), again on the other float path.
echo "==> again on one thread: the numeric tests"
OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python -m pytest -q -m "numeric and not browser"

stage "3/3: browser"
.venv/bin/python -m pytest -q -m browser
