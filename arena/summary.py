"""What a replay (or a run, at shutdown) did: counts, losses and per-block latencies.

Latencies go into a fixed log-scale histogram (bins 1 % wide from 0.1 µs to about three
hours), so a run of any length keeps the same few kilobytes per stat: the count and the
max are exact, p50 and p99 are within 0.5 % of the run's own percentiles. The Prometheus
histograms serve dashboards.
"""

from __future__ import annotations

import math
from typing import Final, final

import msgspec
import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry

LATENCY_FLOOR_SECONDS: Final = 1e-7
LATENCY_BIN_GROWTH: Final = 1.01  # each bin's upper edge over its lower edge
LATENCY_BINS: Final = 2400  # 0.1 µs · 1.01**2400 ≈ 2.3e3 s; longer blocks share the top bin
_LOG_GROWTH: Final = math.log(LATENCY_BIN_GROWTH)


@final
class LatencySamples:
    """Seconds per block as counts over fixed log-scale bins, plus the exact min and max.

    Memory does not depend on how many blocks were added. A percentile is the geometric
    middle of the bin holding that rank (clamped to the min and max seen), interpolated
    between ranks as `numpy.percentile` does.
    """

    __slots__ = ("_counts", "_max", "_min", "_n")

    def __init__(self) -> None:
        self._counts: npt.NDArray[np.int64] = np.zeros(LATENCY_BINS, dtype=np.int64)
        self._n = 0
        self._min = math.inf
        self._max = -math.inf

    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        return int(self._counts.nbytes)

    def add(self, seconds: float) -> None:
        self._counts[_bin_of(seconds)] += 1
        self._n += 1
        self._min = min(self._min, seconds)
        self._max = max(self._max, seconds)

    def percentile(self, q: float) -> float:
        """Seconds at percentile `q` (0..100); raises ValueError when empty."""
        if self._n == 0:
            raise ValueError("no latency was added")
        rank = q / 100 * (self._n - 1)
        low, high = math.floor(rank), math.ceil(rank)
        cumulative = np.cumsum(self._counts)
        at_low, at_high = self._value_at(cumulative, low), self._value_at(cumulative, high)
        return at_low + (at_high - at_low) * (rank - low)

    def _value_at(self, cumulative: npt.NDArray[np.int64], rank: int) -> float:
        """The estimate of the `rank`-th smallest value (0-based)."""
        b = int(np.searchsorted(cumulative, rank, side="right"))
        middle = LATENCY_FLOOR_SECONDS * LATENCY_BIN_GROWTH ** (b + 0.5)
        return float(min(max(middle, self._min), self._max))

    def stats(self) -> LatencyStats:
        if self._n == 0:
            return LatencyStats(count=0, p50_us=None, p99_us=None, max_us=None)
        return LatencyStats(
            count=self._n,
            p50_us=round(self.percentile(50.0) * 1e6, 1),
            p99_us=round(self.percentile(99.0) * 1e6, 1),
            max_us=round(self._max * 1e6, 1),
        )


def _bin_of(seconds: float) -> int:
    if seconds <= LATENCY_FLOOR_SECONDS:
        return 0
    return min(int(math.log(seconds / LATENCY_FLOOR_SECONDS) / _LOG_GROWTH), LATENCY_BINS - 1)


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
