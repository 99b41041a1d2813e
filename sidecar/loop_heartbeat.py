"""Whether the service's event loop still runs: a task on the loop stamps the time, and
any thread can ask how long ago that was (`/healthz` asks from the HTTP server's)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import final


@final
class LoopHeartbeat:
    """`run()` on the loop stamps `monotonic()` every `interval` seconds; the loop is
    stalled once the last stamp is older than `stall_limit` seconds. Before `run()`
    starts, the stamp is the construction time."""

    def __init__(self, stall_limit: float, interval: float | None = None) -> None:
        if stall_limit <= 0:
            raise ValueError(f"stall_limit must be positive, got {stall_limit}")
        self.stall_limit = stall_limit
        self.interval = interval if interval is not None else min(1.0, stall_limit / 4)
        self.last_beat = time.monotonic()

    async def run(self, on_beat: Callable[[], None] | None = None) -> None:
        while True:
            self.last_beat = time.monotonic()
            if on_beat is not None:
                on_beat()
            await asyncio.sleep(self.interval)

    def silence(self) -> float:
        """Seconds since the loop last ticked."""
        return max(0.0, time.monotonic() - self.last_beat)

    def liveness_reasons(self) -> list[str]:
        silence = self.silence()
        if silence <= self.stall_limit:
            return []
        return [f"event loop stalled: no tick for {silence:.1f}s (limit {self.stall_limit:g}s)"]
