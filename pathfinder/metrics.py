"""Prometheus metrics of the path recalculation (`arena_path_*`)."""

from __future__ import annotations

from typing import Final, final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS: Final = (100e-6, 250e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1.0)


@final
class PathMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.recalculations = Counter(
            "arena_path_recalculations",
            "Settled points the pathfinder evaluated",
            registry=registry,
        )
        self.suppressed = Counter(
            "arena_path_suppressed",
            "Settled points skipped because the state was not trustworthy",
            registry=registry,
        )
        self.cycles_screened = Counter(
            "arena_path_cycles_screened",
            "Cycles screened (containing a changed pool)",
            registry=registry,
        )
        self.candidates_verified = Counter(
            "arena_path_candidates_verified",
            "Screened candidates verified exactly",
            registry=registry,
        )
        self.verify_quotes = Counter(
            "arena_path_verify_quotes",
            "Exact cycle quotes spent verifying candidates (at most 12 per candidate)",
            registry=registry,
        )
        self.verify_unmodelled = Counter(
            "arena_path_verify_unmodelled",
            "Candidates whose exact profit disagreed with the real-valued optimum",
            registry=registry,
        )
        self.opportunities = Counter(
            "arena_path_opportunities", "Opportunities emitted", registry=registry
        )
        self.v4_excluded = Gauge(
            "arena_path_v4_excluded_pools",
            "V4 pools followed but left out of pathfinding (dynamic fee, swap-delta hooks, "
            "a pool key that does not match the id)",
            ["reason"],
            registry=registry,
        )
        self.sink_errors = Counter(
            "arena_path_sink_errors",
            "Opportunities a sink failed to deliver",
            ["sink"],
            registry=registry,
        )
        self.recalc_seconds = Histogram(
            "arena_path_recalc_seconds",
            "Settled point to opportunities out",
            buckets=_BUCKETS,
            registry=registry,
        )
