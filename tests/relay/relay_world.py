"""An in-process relay on a real Unix socket and a real JetStream server, and a reader of
what the stream holds, for the relay's fault tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats

from exex_bridge.frame_publisher import FramePublisher
from exex_bridge.frame_relay import FrameRelay, RelayOptions, connect_nats
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import Retention, stream_name
from exex_bridge.socket_source import Backoff, SocketSource

DEADLINE = 60.0


@dataclass
class RunningRelay:
    relay: FrameRelay
    metrics: RelayMetrics
    task: asyncio.Task[None]

    def value(self, name: str) -> float:
        found = self.metrics.registry.get_sample_value(name)
        return 0.0 if found is None else found


async def until(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll `condition` (every 20 ms) until it holds; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running_relay(
    url: str, sock: Path, chain: str, *, max_buffered: int = 100_000, linger: float = 0.003
) -> AsyncIterator[RunningRelay]:
    hook: list[FramePublisher] = []
    nc = await connect_nats(url, 10.0, hook)
    metrics = RelayMetrics()
    options = RelayOptions(chain, Retention(3600.0, 1 << 30, 120.0), max_buffered, linger=linger)
    source = SocketSource(sock, backoff=Backoff(initial=0.02, maximum=0.2))
    relay = FrameRelay(source, nc, options, metrics)
    await relay.open(hook)
    task = asyncio.create_task(relay.run())
    try:
        yield RunningRelay(relay, metrics, task)
    finally:
        await source.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.close()


@dataclass
class StreamContents:
    payloads: list[bytes] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)  # each frame's message
    restarts: list[int] = field(default_factory=list)  # messages marked Exex-Restart

    def first_frame_of(self, seq: int) -> int:
        """The index in `payloads` of message `seq`'s first frame."""
        return self.sequences.index(seq)


async def last_sequence(url: str, chain: str) -> int:
    """The stream sequence of the chain's last stored message (0: empty)."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(stream_name(chain))
        return info.state.last_seq
    finally:
        await nc.close()


async def read_stream(url: str, chain: str) -> StreamContents:
    """Every frame the chain's stream holds now, split out of its messages."""
    found = StreamContents()
    last = await last_sequence(url, chain)
    if last == 0:
        return found
    source = JetStreamSource(url, chain, "reader", stop_seq=last, on_restart=found.restarts.append)
    async with asyncio.timeout(DEADLINE):
        async for payload in source.frames():
            found.payloads.append(payload)
            found.sequences.append(source.position or 0)
    return found
