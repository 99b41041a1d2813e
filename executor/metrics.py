"""The executor's metrics: per-stage latency, attempts by outcome and reason, expected and
realized profit, gas spent, the nonce lane and the guards (kill switch, loss limits).

`reason` labels come from a fixed vocabulary (`Refusal.kind`, the fee policy's kinds,
`SendErrorKind`, the guards' names), never from free text; the text goes to the journal.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

STAGES: Final = ("plan", "simulate", "sign", "submit", "include")
STAGE_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    12.0,
    30.0,
    60.0,
)


@final
class ExecutionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.stage_seconds = Histogram(
            "arena_executor_stage_seconds",
            "time per attempt stage: plan, simulate, sign, submit, include",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            "arena_executor_attempts",
            "attempts by outcome (journal status) and reason kind",
            ["outcome", "reason"],
            registry=registry,
        )
        self.expected_profit = Counter(
            "arena_executor_expected_profit",
            "profit the simulations promised for transactions sent, start-token units",
            ["token"],
            registry=registry,
        )
        self.realized_profit = Counter(
            "arena_executor_realized_profit",
            "profit mined transactions realized, start-token units",
            ["token"],
            registry=registry,
        )
        self.gas_spent = Counter(
            "arena_executor_gas_spent_wei",
            "gas paid by mined transactions (included or reverted), wei",
            registry=registry,
        )
        self.lane_errors = Counter(
            "arena_executor_lane_errors",
            "send errors by kind: nonce_too_low, already_known, replacement_underpriced, "
            "rejected, ambiguous, lane_unavailable",
            ["kind"],
            registry=registry,
        )
        self.lane_next_nonce = Gauge(
            "arena_executor_lane_next_nonce",
            "the next fresh nonce of the sending key's lane",
            registry=registry,
        )
        self.lane_leases = Gauge(
            "arena_executor_lane_leases",
            "nonces handed out and not yet confirmed or released",
            registry=registry,
        )
        self.lane_free = Gauge(
            "arena_executor_lane_free_nonces",
            "nonces given back, waiting for reuse",
            registry=registry,
        )
        self.halted = Gauge(
            "arena_executor_halted",
            "1 while sending is stopped, by guard: kill_switch, loss_limit",
            ["guard"],
            registry=registry,
        )
        for guard in ("kill_switch", "loss_limit"):
            self.halted.labels(guard=guard).set(0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(stage=name).observe(time.perf_counter() - started)
