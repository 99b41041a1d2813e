"""Prometheus metrics of `arena relay` (names `arena_relay_<noun>_<unit>`), over a
registry of their own so two relays in one process never share counters."""

from __future__ import annotations

from typing import final

from prometheus_client import CollectorRegistry, Counter, Gauge


@final
class RelayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.frames_in = Counter(
            "arena_relay_frames_received", "Frames read from the ExEx socket", registry=r
        )
        self.published = Counter(
            "arena_relay_frames_published",
            "Frame publishes sent to JetStream (resends after a failure included)",
            registry=r,
        )
        self.acked = Counter(
            "arena_relay_frames_acked",
            "Frames JetStream confirmed stored (or already held), in stream order",
            registry=r,
        )
        self.duplicates = Counter(
            "arena_relay_frames_duplicate",
            "Publishes JetStream dropped as duplicates of a stored message id",
            registry=r,
        )
        self.buffered = Gauge(
            "arena_relay_frames_buffered",
            "Frames held in memory, not yet confirmed by JetStream",
            registry=r,
        )
        self.dropped = Counter(
            "arena_relay_frames_dropped",
            "Frames lost because the buffer was full while JetStream was unreachable",
            registry=r,
        )
        self.producer_restarts = Counter(
            "arena_relay_producer_restarts",
            "Producer sessions that began again at a lower stream_seq (a new epoch)",
            registry=r,
        )
        self.producer_gaps = Counter(
            "arena_relay_producer_gap_messages",
            "Messages the producer's stream_seq skipped (lost before the relay)",
            registry=r,
        )
        self.nats_reconnects = Counter(
            "arena_relay_nats_reconnects", "Reconnections to the NATS server", registry=r
        )
        self.recoveries = Counter(
            "arena_relay_publish_recoveries",
            "Times publishing stopped (a refused or unanswered publish, a lost connection) "
            "and resumed from the last stored message",
            registry=r,
        )
