"""What a replay (or a run, at shutdown) did: counts, losses and per-block latencies.

Latencies are kept as raw samples (one float per block) so p50/p99 are exact for the
run, not bucket estimates; the Prometheus histograms serve dashboards.
"""

from __future__ import annotations

from typing import final

import msgspec
import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry


@final
class LatencySamples:
    """Seconds per block, appended into a preallocated array that doubles when full."""

    __slots__ = ("_n", "_values")

    def __init__(self, capacity: int = 4096) -> None:
        self._values: npt.NDArray[np.float64] = np.empty(max(1, capacity), dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(self, seconds: float) -> None:
        if self._n == len(self._values):
            self._values = np.resize(self._values, 2 * len(self._values))
        self._values[self._n] = seconds
        self._n += 1

    def stats(self) -> LatencyStats:
        if self._n == 0:
            return LatencyStats(count=0, p50_us=None, p99_us=None, max_us=None)
        values = self._values[: self._n] * 1e6
        p50, p99 = np.percentile(values, [50.0, 99.0])
        return LatencyStats(
            count=self._n,
            p50_us=round(float(p50), 1),
            p99_us=round(float(p99), 1),
            max_us=round(float(values.max()), 1),
        )


class LatencyStats(msgspec.Struct, frozen=True, kw_only=True):
    count: int
    p50_us: float | None
    p99_us: float | None
    max_us: float | None


class ReplaySummary(msgspec.Struct, frozen=True, kw_only=True):
    """`sync` is the final `SyncState` ("synced", "unsynced", "unseeded": nothing was
    loaded and no block taken). `unsynced` is the latest loss as text and
    `unsynced_cause` its `LossCause`, both None unless unsynced. `truncated_bytes` is the
    size of an incomplete final frame that was ignored."""

    source: str
    format: str
    frames: int
    bytes_read: int
    decode_errors: int
    truncated_bytes: int
    ended_inside_block: bool
    blocks_applied: int
    blocks_reverted: int
    reorgs: int
    settled_points: int
    tip_block: int | None
    duplicates: int  # messages dropped as repeats of ones already taken
    updates_by_protocol: dict[str, int]  # updates of the blocks applied or reverted
    discarded_by_reason: dict[str, int]
    divergences_by_kind: dict[str, int]
    stale_pools: int
    sync: str
    unsynced: str | None
    unsynced_cause: str | None
    apply_latency: LatencyStats
    revert_latency: LatencyStats
    recalc_latency: LatencyStats  # the settled-point subscribers (the pathfinder), per point
    elapsed_seconds: float


def sample_value(registry: CollectorRegistry, name: str) -> int:
    value = registry.get_sample_value(name)
    return int(value) if value is not None else 0


def samples_by_label(registry: CollectorRegistry, name: str, label: str) -> dict[str, int]:
    """`{label value: count}` of every sample `name` (a labelled counter's `_total`)."""
    out: dict[str, int] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == name and label in sample.labels:
                out[sample.labels[label]] = out.get(sample.labels[label], 0) + int(sample.value)
    return dict(sorted(out.items()))


def _latency(stats: LatencyStats) -> str:
    if stats.count == 0:
        return "-"
    return f"n={stats.count} p50={stats.p50_us} µs p99={stats.p99_us} µs max={stats.max_us} µs"


def _mapping(values: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "-"


def _state(summary: ReplaySummary) -> str:
    if summary.unsynced is not None:
        return f"UNSYNCED ({summary.unsynced})"
    return summary.sync


def render_table(summary: ReplaySummary) -> str:
    rate = summary.frames / summary.elapsed_seconds if summary.elapsed_seconds > 0 else 0.0
    rows = [
        ("source", f"{summary.source} ({summary.format})"),
        ("frames", f"{summary.frames} ({summary.bytes_read} bytes, {rate:,.0f} frames/s)"),
        ("decode errors", str(summary.decode_errors)),
        ("truncated tail", f"{summary.truncated_bytes} bytes" if summary.truncated_bytes else "no"),
        ("ended inside a block", "yes" if summary.ended_inside_block else "no"),
        ("blocks applied", str(summary.blocks_applied)),
        ("blocks reverted", str(summary.blocks_reverted)),
        ("reorgs", str(summary.reorgs)),
        ("duplicates dropped", str(summary.duplicates)),
        ("tip block", "-" if summary.tip_block is None else str(summary.tip_block)),
        ("updates by protocol", _mapping(summary.updates_by_protocol)),
        ("discarded by reason", _mapping(summary.discarded_by_reason)),
        ("divergences", _mapping(summary.divergences_by_kind)),
        ("stale pools", str(summary.stale_pools)),
        ("state", _state(summary)),
        ("apply per block", _latency(summary.apply_latency)),
        ("revert per block", _latency(summary.revert_latency)),
        ("recalculation", _latency(summary.recalc_latency)),
        ("elapsed", f"{summary.elapsed_seconds:.3f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
