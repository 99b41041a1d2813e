#!/usr/bin/env bash
# Creates .bench-venv-degenbot/ (gitignored) with degenbot 0.3.0 from PyPI: the newest
# release for Python 3.11, and it pins web3<8, so it cannot share the project's venv.
# benchmarks.bench_quote runs benchmarks/degenbot_quote.py with this interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
VENV=.bench-venv-degenbot
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "degenbot==0.3.0"
"$VENV/bin/python" -c "from importlib.metadata import version; print('degenbot', version('degenbot'), 'ready in $VENV')"
