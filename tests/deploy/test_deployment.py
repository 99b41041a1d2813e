"""`deploy/`: the systemd unit (systemd-analyze, hardening), the per-chain settings
loaded by the real loader, the Prometheus scrape config (promtool), Grafana
provisioning, the dashboard's chain/instance filters, and the runbook's coverage."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from arena.sync_state import UNSEEDED, LossCause, SyncLoss, SyncState, SyncStatus
from exex_bridge.connection_state import ConnectionState
from sidecar.cli import build_parser
from sidecar.config_file import load_settings
from sidecar.health import Health, readiness_reasons
from sidecar.loop_heartbeat import LoopHeartbeat
from sidecar.settings import ArenaSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "arena@.service"
CONFIGS = sorted((DEPLOY / "config").glob("*.toml"))
RUNBOOK = ROOT / "docs" / "operations.md"
INSTALLED_ARENA = "/opt/arena/venv/bin/arena"


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: run bash scripts/test.sh, which installs it"
    return found


def _yaml(path: Path) -> Any:
    """Parsed by js-yaml from node_modules (the YAML parser the repository already has)."""
    script = (
        "const y = require('js-yaml'); const fs = require('fs');"
        "process.stdout.write(JSON.stringify(y.load(fs.readFileSync(process.argv[1], 'utf8'))))"
    )
    done = subprocess.run(
        [_tool("node"), "-e", script, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified as the instance `arena@ethereum`, with ExecStart pointing at this
    checkout's `arena` (verify insists the binary exists)."""
    instance = tmp_path / "arena@ethereum.service"
    text = UNIT.read_text()
    assert INSTALLED_ARENA in text
    instance.write_text(text.replace(INSTALLED_ARENA, str(ROOT / ".venv" / "bin" / "arena")))
    done = subprocess.run(
        [_tool("systemd-analyze"), "verify", str(instance)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""


def test_the_unit_is_hardened_and_keeps_the_key_out() -> None:
    service = _unit()["Service"]
    expected = {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "StateDirectory": "arena/%i",
        "User": "arena",
        "Restart": "on-failure",
        "LoadCredential": "executor-key:/etc/arena/credentials/%i.key",
        "CapabilityBoundingSet": "",
    }
    assert {key: service.get(key) for key in expected} == expected
    exec_start = service["ExecStart"].split()
    assert exec_start[:4] == [INSTALLED_ARENA, "run", "--config", "/etc/arena/%i.toml"]
    assert exec_start[4:] == ["--key-file", "%d/executor-key"]  # a path in the credentials dir
    assert "Environment" not in service  # nothing inline; secrets come from EnvironmentFile
    assert service["EnvironmentFile"] == "-/etc/arena/%i.env"
    assert not re.search(r"[0-9a-fA-F]{64}", UNIT.read_text())


def _settings(config: Path) -> ArenaSettings:
    args = ["run", "--config", str(config), "--key-file", "/run/credentials/k/executor-key"]
    return load_settings(build_parser().parse_args(args), environ={})


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_each_chain_config_loads_and_fits_the_unit(config: Path) -> None:
    settings = _settings(config)
    chain = config.stem
    assert settings.pathfinder.chain == chain
    assert settings.engine.data_dir == Path("/var/lib/arena") / chain  # StateDirectory
    assert settings.state.state_out is not None
    assert settings.state.state_out.parent == settings.engine.data_dir
    assert not settings.socket.path.startswith("/tmp/")  # the unit's /tmp is private
    assert settings.metrics.port is not None
    assert settings.executor.enabled is False and settings.executor.live is False
    assert settings.rpc.url is None  # credentials-bearing URLs come from the .env file


def test_the_configs_cover_two_chains_on_their_own_ports() -> None:
    assert {c.stem for c in CONFIGS} >= {"ethereum", "base"}
    ports = [_settings(c).metrics.port for c in CONFIGS]
    assert len(set(ports)) == len(ports)
    ages = {c.stem: _settings(c).service.ready_block_age for c in CONFIGS}
    assert ages["base"] < ages["ethereum"]  # 2 s blocks against 12 s


def test_the_prometheus_config_is_valid_and_scrapes_every_chain() -> None:
    config = DEPLOY / "prometheus" / "prometheus.yml"
    done = subprocess.run(
        [_tool("promtool"), "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rules = re.findall(r"^\s*- alert: ", (ROOT / "grafana" / "alerts.yml").read_text(), re.M)
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout + done.stderr  # the symlinked alerts
    (job,) = _yaml(config)["scrape_configs"]
    targets = {group["labels"]["chain"]: group["targets"] for group in job["static_configs"]}
    assert targets == {c.stem: [f"127.0.0.1:{_settings(c).metrics.port}"] for c in CONFIGS}


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (source,) = _yaml(provisioning / "datasources" / "arena.yml")["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    (provider,) = _yaml(provisioning / "dashboards" / "arena.yml")["providers"]
    assert provider["type"] == "file"
    installed = f"{provider['options']['path']}/dashboard.json"
    runbook = RUNBOOK.read_text()
    assert f"`grafana/dashboard.json` copied to `{installed}`" in runbook


_SELECTOR = re.compile(r"\b(arena_[a-z0-9_]+)(\{[^}]*\})?")


def test_every_panel_query_filters_by_chain_and_instance() -> None:
    dashboard = json.loads((ROOT / "grafana" / "dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["chain"]["type"] == variables["instance"]["type"] == "query"
    assert "$chain" in variables["instance"]["definition"]
    selectors = 0
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name, labels in _SELECTOR.findall(target["expr"]):
                selectors += 1
                assert 'chain=~"$chain"' in labels, (panel["title"], name)
                assert 'instance=~"$instance"' in labels, (panel["title"], name)
    assert selectors >= len(dashboard["panels"])


def test_the_runbook_covers_every_alert_and_readiness_reason() -> None:
    runbook = RUNBOOK.read_text()
    alerts = re.findall(r"^\s*- alert: (\w+)$", (ROOT / "grafana" / "alerts.yml").read_text(), re.M)
    assert len(alerts) >= 6
    for alert in alerts:
        assert f"\n### {alert}\n" in runbook, alert
    # Every reason the probes can give, as the code words it, leads to a row or a paragraph.
    lost = SyncStatus(SyncState.UNSYNCED, SyncLoss(LossCause.SEQ_GAP, "7 after 5", 1))
    reasons = [
        *readiness_reasons(_health(UNSEEDED, ConnectionState.BACKING_OFF, None), 60.0),
        *readiness_reasons(_health(lost, ConnectionState.CONNECTED, 120.0), 60.0),
    ]
    stalled = LoopHeartbeat(stall_limit=1.0)
    stalled.last_beat -= 5.0
    reasons += stalled.liveness_reasons()
    assert len(reasons) == 6
    for reason in reasons:
        first_words = re.split(r"[:(]", reason)[0].strip()
        lead = first_words.split()[0]
        assert f"`{lead}" in runbook, reason


def _health(sync: SyncStatus, connection: ConnectionState, age: float | None) -> Health:
    return Health(
        sync=sync,
        tip_block=None,
        stale_pools=0,
        last_block_age_seconds=age,
        connection=connection,
    )
