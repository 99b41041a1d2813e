#!/usr/bin/env bash
# Installs the arena and runs it on the bundled recording (real Uniswap events and reorgs
# recorded from an anvil node by `arena follow`): no Reth node needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv
step "arena replay (bundled sample)"
exec .venv/bin/arena replay --sample "$@"
