"""Metrics of the running service around the pipeline: the socket's connection (or the
relayed stream's consumer), the probes, the whitelist snapshot at start
(`docs/metrics.md`, section Service)."""

from __future__ import annotations

from typing import final

from prometheus_client import CollectorRegistry, Counter, Gauge

from exex_bridge.connection_state import ConnectionState
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.socket_source import SocketSourceStats


@final
class ServiceMetrics:
    """Socket counters are copied from `SocketSourceStats` by `observe_socket` (each
    heartbeat), so the source itself stays free of Prometheus."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.socket_connects = Counter(
            "arena_socket_connects", "Connections made to the ExEx socket", registry=r
        )
        self.socket_disconnects = Counter(
            "arena_socket_disconnects",
            "Connections to the ExEx socket lost (each marks the arena unsynced)",
            registry=r,
        )
        self.socket_connect_failures = Counter(
            "arena_socket_connect_failures", "Connection attempts that failed", registry=r
        )
        self.socket_oversize_frames = Counter(
            "arena_socket_oversize_frames",
            "Frames longer than [socket] max_frame_size (the connection is dropped)",
            registry=r,
        )
        self.socket_cut_frames = Counter(
            "arena_socket_cut_frames",
            "Connections that ended inside a frame (the partial frame is discarded)",
            registry=r,
        )
        self.socket_backoff_attempts = Gauge(
            "arena_socket_backoff_attempts",
            "Reconnect delays taken since the last stable connection",
            registry=r,
        )
        self.socket_connected = Gauge(
            "arena_socket_connected", "1 while connected to the ExEx socket", registry=r
        )
        self.ready = Gauge("arena_service_ready", "1 while /readyz answers 200", registry=r)
        self.whitelist_snapshots = Counter(
            "arena_service_whitelist_snapshots",
            "Start-ups that waited for the whitelist snapshot, by outcome",
            ["outcome"],
            registry=r,
        )
        for outcome in ("received", "timed_out"):
            self.whitelist_snapshots.labels(outcome=outcome)
        self._seen = (0, 0, 0, 0, 0)  # the five counters below, as last observed
        self.jetstream_missing = Counter(
            "arena_jetstream_messages_missing",
            "Relayed stream messages removed (retention, a purge) before this arena read "
            "them: their frames are lost",
            registry=r,
        )
        self.jetstream_malformed = Counter(
            "arena_jetstream_messages_malformed",
            "Relayed stream messages that were no frame batch (their whole frames kept)",
            registry=r,
        )
        self.jetstream_redelivered = Counter(
            "arena_jetstream_messages_redelivered",
            "Relayed stream messages delivered again after a reconnection (skipped)",
            registry=r,
        )
        self.jetstream_position = Gauge(
            "arena_jetstream_stream_sequence",
            "Stream sequence of the relayed message whose frames are being applied",
            registry=r,
        )
        self._seen_jetstream = (0, 0, 0)

    def observe_socket(self, stats: SocketSourceStats, backoff_attempts: int) -> None:
        now = (
            stats.connects,
            stats.disconnects,
            stats.connect_failures,
            stats.oversize_frames,
            stats.truncated_frames,
        )
        counters = (
            self.socket_connects,
            self.socket_disconnects,
            self.socket_connect_failures,
            self.socket_oversize_frames,
            self.socket_cut_frames,
        )
        for counter, value, seen in zip(counters, now, self._seen, strict=True):
            counter.inc(value - seen)
        self._seen = now
        self.socket_backoff_attempts.set(backoff_attempts)
        self.socket_connected.set(int(stats.state is ConnectionState.CONNECTED))

    def observe_jetstream(self, source: JetStreamSource) -> None:
        """The relayed stream consumer's counters (copied, as the socket's)."""
        now = (source.missing, source.malformed, source.redelivered)
        counters = (self.jetstream_missing, self.jetstream_malformed, self.jetstream_redelivered)
        for counter, value, seen in zip(counters, now, self._seen_jetstream, strict=True):
            counter.inc(value - seen)
        self._seen_jetstream = now
        if source.position is not None:
            self.jetstream_position.set(source.position)
