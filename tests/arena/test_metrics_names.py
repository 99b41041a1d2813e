"""docs/metrics.md and ArenaMetrics list the same metrics, with the same types and labels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from arena.metrics import ArenaMetrics
from executor.metrics import ExecutionMetrics
from executor.outcome_metrics import OutcomeMetrics
from executor.worker import ExecutorMetrics
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.rpc import RpcMetrics
from pathfinder.metrics import PathMetrics
from pathfinder.sinks import SinkMetrics
from sidecar.service_metrics import ServiceMetrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_ROW = re.compile(r"^\| `(?P<name>arena_[a-z0-9_]+)` \| (?P<type>\w+) \|(?P<labels>[^|]*)\|")
_SUFFIX = {"counter": "_total", "gauge": "", "histogram": ""}


class Documented(NamedTuple):
    type: str
    labels: frozenset[str]


def documented() -> dict[str, Documented]:
    rows: dict[str, Documented] = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r"`([a-z_]+)`", match["labels"]))
        assert match["name"] not in rows, f"{match['name']} listed twice"
        rows[match["name"]] = Documented(match["type"], labels)
    return rows


def exposed_name(metric: MetricWrapperBase) -> tuple[str, str]:
    family = next(iter(metric.describe()))
    return family.name + _SUFFIX[family.type], family.type


class AllMetrics(NamedTuple):
    """Every metric family the process can register, on one registry."""

    arena: ArenaMetrics
    path: PathMetrics
    sinks: SinkMetrics
    executor: ExecutorMetrics
    rpc: RpcMetrics
    relay: RelayMetrics  # `arena relay`'s own registry in the service; here on the same one
    service: ServiceMetrics
    execution: ExecutionMetrics
    outcomes: OutcomeMetrics

    @classmethod
    def fresh(cls) -> AllMetrics:
        arena = ArenaMetrics()
        registry = arena.registry
        return cls(
            arena,
            PathMetrics(registry),
            SinkMetrics(registry),
            ExecutorMetrics(registry),
            RpcMetrics(registry),
            RelayMetrics(registry),
            ServiceMetrics(registry),
            ExecutionMetrics(registry),
            OutcomeMetrics(registry),
        )


def metric_objects(metrics: AllMetrics) -> dict[str, MetricWrapperBase]:
    groups = [*metrics, metrics.arena.hold]
    objects = [
        v
        for group in groups
        for v in vars(group).values()
        if isinstance(v, Counter | Gauge | Histogram)
    ]
    return {exposed_name(metric)[0]: metric for metric in objects}


def test_every_documented_metric_exists_and_vice_versa() -> None:
    docs = documented()
    metrics = AllMetrics.fresh()
    assert len(docs) >= 30
    assert sorted(docs) == sorted(metric_objects(metrics))
    # Nothing is registered besides the attributes (so nothing escapes the table).
    registered = {f.name + _SUFFIX[f.type] for f in metrics.arena.registry.collect()}
    assert registered == set(docs)


def test_types_and_labels_match_the_table() -> None:
    docs = documented()
    for name, metric in metric_objects(AllMetrics.fresh()).items():
        doc = docs[name]
        assert exposed_name(metric)[1] == doc.type, name
        if doc.labels:
            # labels() accepts exactly the metric's label names, nothing more or less.
            metric.labels(**dict.fromkeys(doc.labels, "x"))
        samples = [sample for family in metric.collect() for sample in family.samples]
        assert samples, f"{name} exposes no sample"
        for sample in samples:
            assert set(sample.labels) - {"le"} == doc.labels, (name, sample)


def test_metric_names_follow_the_convention() -> None:
    for name, doc in documented().items():
        assert re.fullmatch(r"arena_[a-z]+_[a-z0-9_]+", name), name
        assert (doc.type == "counter") == name.endswith("_total"), name
        if doc.type == "histogram":
            assert name.endswith("_seconds"), name
