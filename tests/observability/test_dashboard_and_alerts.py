"""Every metric the Grafana dashboard or an alert uses exists; the rules pass promtool."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from arena.metrics import ArenaMetrics
from executor.metrics import ExecutionMetrics
from executor.outcome_metrics import OutcomeMetrics
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.rpc import RpcMetrics
from pathfinder.metrics import PathMetrics
from pathfinder.sinks import SinkMetrics
from sidecar.service_metrics import ServiceMetrics

GRAFANA = Path(__file__).resolve().parents[2] / "grafana"
_NAME = re.compile(r"\b(arena_[a-z0-9_]+)")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _exposed_families() -> set[str]:
    registry = CollectorRegistry()
    ArenaMetrics(registry)
    PathMetrics(registry)
    SinkMetrics(registry)
    RpcMetrics(registry)
    ServiceMetrics(registry)
    ExecutionMetrics(registry)
    OutcomeMetrics(registry)
    RelayMetrics(registry)  # `arena relay`'s own process: on the same dashboard
    return {family.name for family in registry.collect()}


def _family(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((GRAFANA / "dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_dashboard_metrics_exist() -> None:
    families = _exposed_families()
    used = {_family(n) for e in _dashboard_expressions() for n in _NAME.findall(e)}
    assert used, "the dashboard queries no arena metric"
    assert sorted(used - families) == []


def test_alert_metrics_exist() -> None:
    families = _exposed_families()
    used = {_family(n) for n in _NAME.findall((GRAFANA / "alerts.yml").read_text())}
    assert len(used) >= 5
    assert sorted(used - families) == []


def test_every_family_is_on_the_dashboard() -> None:
    used = {_family(n) for e in _dashboard_expressions() for n in _NAME.findall(e)}
    assert sorted(_exposed_families() - used) == []


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run bash scripts/test.sh, which installs it"
    return subprocess.run(
        [promtool, *args], cwd=GRAFANA, capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_are_valid() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    rules = re.findall(r"^\s*- alert: ", (GRAFANA / "alerts.yml").read_text(), re.M)
    assert len(rules) >= 10
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_alert_rules_fire_as_specified() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
