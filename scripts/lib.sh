# Shared set-up steps for scripts/demo.sh and scripts/test.sh (sourced, not run).
step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_venv() {
  local extra="${1:-}"
  command -v python3 >/dev/null || die "python3 (3.11+) is required"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11+ is required"
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv"
    python3 -m venv .venv
  fi
  step "installing the package${extra:+ with [$extra]}"
  .venv/bin/python -m pip install --quiet --upgrade pip
  if [ -n "$extra" ]; then
    .venv/bin/python -m pip install --quiet -e ".[$extra]"
  else
    .venv/bin/python -m pip install --quiet -e .
  fi
}

ensure_node_packages() {
  command -v npm >/dev/null || die "npm is required for anvil and the Uniswap artifacts"
  step "installing npm packages (anvil, Uniswap v2/v3/v4 core and periphery, Balancer V2 deployments, solc)"
  npm ci --silent --no-audit --no-fund
  [ -x node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil ] || die "anvil binary missing after npm ci"
  [ -f node_modules/solc/solc.js ] || die "solc (the executor contract's compiler) missing after npm ci"
}

ensure_promtool() {
  if ! command -v promtool >/dev/null; then
    step "installing Debian's prometheus (promtool)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
  fi
  command -v promtool >/dev/null || die "promtool missing after installing prometheus"
}

ensure_systemd_analyze() {
  if ! command -v systemd-analyze >/dev/null; then
    step "installing Debian's systemd (systemd-analyze, for deploy/systemd)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq systemd >/dev/null
  fi
  command -v systemd-analyze >/dev/null || die "systemd-analyze missing after installing systemd"
}
