"""Frames kept, in order, while the pipeline waits for the node.

When a block opens on a state the RPC must fix first (a resync after a loss, pools that
joined the whitelist), the fix is fetched at block N-1 without blocking the stream: the
reader keeps taking frames off the socket and the pipeline keeps them here, then applies
them in arrival order on top of the fixed state. Nothing is settled (and so nothing is
emitted) before that. Held frames are bounded by `max_bytes`; past it every further frame
of the hold is dropped, counted and logged once, and the first frame read after the
release shows the assembler a stream_seq gap: the arena becomes unsynced, never wrong.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Final, final

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

DEFAULT_MAX_HELD_BYTES: Final = 512 * 1024 * 1024

HeldItem = bytes | Callable[[], None]  # a frame, or a stream event to replay in order


@final
class HoldMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.holds = Counter(
            "arena_stream_holds",
            "Times the pipeline held frames while the node's RPC answered",
            registry=registry,
        )
        self.held = Gauge(
            "arena_stream_held_frames", "Frames held now, waiting for the RPC", registry=registry
        )
        self.dropped = Counter(
            "arena_stream_held_frames_dropped",
            "Frames dropped because a hold exceeded its byte bound (the arena turns unsynced)",
            registry=registry,
        )
        self.seconds = Counter(
            "arena_stream_hold_seconds",
            "Seconds the pipeline spent holding frames",
            registry=registry,
        )


@final
class FrameHold:
    """`metrics`: the engine's (`ArenaMetrics.hold`), shared by every pipeline over it."""

    def __init__(self, metrics: HoldMetrics, max_bytes: int = DEFAULT_MAX_HELD_BYTES) -> None:
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.active = False
        self.reason = ""
        self.items: deque[HeldItem] = deque()
        self.bytes = 0
        self.dropped = 0
        self._since = 0.0

    @property
    def holding(self) -> bool:
        """Frames must wait: a hold is on, or held frames are not all replayed yet."""
        return self.active or bool(self.items)

    def start(self, reason: str) -> None:
        self.active = True
        self.reason = reason
        self.dropped = 0
        self._since = time.perf_counter()
        self.metrics.holds.inc()

    def stop(self) -> None:
        if self.active:
            self.metrics.seconds.inc(time.perf_counter() - self._since)
        self.active = False

    def keep(self, payload: bytes | memoryview) -> None:
        if self.dropped or self.bytes + len(payload) > self.max_bytes:
            if not self.dropped:
                log.error(
                    "holding frames for %s: over %d bytes; dropping frames until it ends "
                    "(the arena will be unsynced and resync again)",
                    self.reason,
                    self.max_bytes,
                )
            self.dropped += 1
            self.metrics.dropped.inc()
            return
        data = payload if isinstance(payload, bytes) else bytes(payload)
        self.items.append(data)
        self.bytes += len(data)
        self.metrics.held.set(len(self.items))

    def defer(self, event: Callable[[], None]) -> None:
        self.items.append(event)

    def next_item(self) -> HeldItem:
        item = self.items.popleft()
        if isinstance(item, bytes):
            self.bytes -= len(item)
        self.metrics.held.set(len(self.items))
        return item

    def clear(self) -> int:
        """Forget every held frame (the service stops); returns how many there were."""
        frames = sum(1 for item in self.items if isinstance(item, bytes))
        self.items.clear()
        self.bytes = 0
        self.metrics.held.set(0)
        self.stop()
        return frames
