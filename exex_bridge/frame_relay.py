"""`FrameRelay`: the ExEx socket's frames, byte for byte, into the chain's JetStream stream.

The relay reads the socket (`SocketSource`: reconnects with backoff) and hands each frame
to a `FramePublisher` under its message id (`relay_stream.MessageId`). It keeps the
producer's sessions apart: a `stream_seq` that goes back (and is not a byte-identical
repeat of a recent frame, which keeps its id and is deduplicated by JetStream) is a
producer restart, starts a new epoch and marks its first message with `Exex-Restart`.
A `stream_seq` that jumps forward is passed on as it is: consumers see the gap.
On start the epoch and the last `stream_seq` are read back from the stream's last message,
so a restarted relay continues the ids where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass
from typing import Final, NamedTuple, final

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from exex_bridge.codec import SEQUENCED_TAGS
from exex_bridge.errors import NatsUnavailableError
from exex_bridge.frame_publisher import FramePublisher
from exex_bridge.redaction import shown_url
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import MessageId, Retention, ensure_stream, frames_subject
from exex_bridge.socket_source import SocketSource

log = logging.getLogger(__name__)

RECENT_WINDOW: Final = 4096  # frames kept to tell a repeat from a restart (as the arena does)
_TAG_SEQ: Final = struct.Struct("<IQ")
_SETTLING_TAGS: Final = frozenset({3, 8})  # EndBlock, ReorgComplete


class _Identified(NamedTuple):
    msg_id: str
    restart: bool = False
    settles: bool = False
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class RelayOptions:
    chain: str
    retention: Retention
    max_buffered: int
    connect_timeout: float = 10.0
    drain_timeout: float = 10.0


async def connect_nats(url: str, timeout: float, publisher: list[FramePublisher]) -> NatsClient:
    """A client that reconnects forever; `publisher` (filled later) hears of each loss."""

    async def disconnected() -> None:
        for p in publisher:
            p.on_disconnected()

    async def reconnected() -> None:
        for p in publisher:
            p.on_reconnected()

    async def error(exc: Exception) -> None:
        log.debug("NATS client error: %r", exc)

    try:
        # With reconnects unbounded the client would retry a first connection forever.
        return await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=timeout,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            ),
            timeout,
        )
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        reason = str(exc) or f"no connection within {timeout:.1f} s"
        raise NatsUnavailableError(shown_url(url), reason) from exc


@final
class FrameRelay:
    """`await relay.run()` until the source closes (or the task is cancelled)."""

    def __init__(
        self, source: SocketSource, nc: NatsClient, options: RelayOptions, metrics: RelayMetrics
    ) -> None:
        self.source = source
        self.nc = nc
        self.options = options
        self.metrics = metrics
        self.publisher: FramePublisher | None = None
        self.epoch = 0
        self.last_seq: int | None = None
        self._extra = 0
        # the last RECENT_WINDOW sequenced frames, by stream_seq modulo the window
        self._recent: list[tuple[int, bytes] | None] = [None] * RECENT_WINDOW

    async def open(self, publisher_hook: list[FramePublisher]) -> FramePublisher:
        """Set up the stream, read back where it ends, start the publisher."""
        stream = await ensure_stream(
            self.nc.jetstream(), self.options.chain, self.options.retention
        )
        publisher = FramePublisher(
            self.nc,
            stream,
            frames_subject(self.options.chain),
            self.metrics,
            max_buffered=self.options.max_buffered,
        )
        last_id = await publisher.last_stored_id()
        last = MessageId.parse(last_id) if last_id is not None else None
        if last is not None:
            self.epoch, self.last_seq = last.epoch, last.seq
            log.info("stream %s ends at message %s: continuing epoch %d", stream, last, self.epoch)
        await publisher.start(last_id)
        publisher_hook.append(publisher)
        self.publisher = publisher
        return publisher

    async def run(self) -> None:
        publisher = self.publisher
        if publisher is None:
            raise RuntimeError("FrameRelay.open() first")
        put = publisher.put
        async with contextlib.aclosing(self.source.frames()) as frames:
            async for payload in frames:
                frame = self._identify(payload)
                await put(
                    frame.msg_id,
                    payload,
                    restart=frame.restart,
                    settles=frame.settles,
                    repeat=frame.repeat,
                )

    async def close(self) -> None:
        """Give the held frames `drain_timeout` to be confirmed, then stop publishing."""
        publisher = self.publisher
        if publisher is not None:
            if publisher.buffered and not await publisher.drain(self.options.drain_timeout):
                log.warning("%d frames not confirmed before the relay stopped", publisher.buffered)
            await publisher.close()
        with contextlib.suppress(nats.errors.Error, asyncio.CancelledError):
            await self.nc.drain()

    def _identify(self, payload: bytes) -> _Identified:
        """The frame's message id; whether it starts a producer session, repeats a recent
        frame, closes a block or an envelope."""
        if len(payload) < 12:
            return _Identified(self._unsequenced())
        tag, seq = _TAG_SEQ.unpack_from(payload)
        if tag not in SEQUENCED_TAGS:
            return _Identified(self._unsequenced())
        settles = tag in _SETTLING_TAGS
        last = self.last_seq
        if last is not None and seq <= last:
            if self._recent[seq % RECENT_WINDOW] == (seq, payload):
                return _Identified(f"{self.epoch}:{seq}", settles=settles, repeat=True)
            self.epoch += 1
            self.metrics.producer_restarts.inc()
            self._recent = [None] * RECENT_WINDOW
            log.warning(
                "producer restarted (stream_seq %d after %d): epoch %d", seq, last, self.epoch
            )
        elif last is not None and seq > last + 1:
            self.metrics.producer_gaps.inc(seq - last - 1)
            log.warning("stream_seq jumped from %d to %d: relayed as a gap", last, seq)
        restart = last is not None and seq <= last
        self.last_seq = seq
        self._extra = 0
        self._recent[seq % RECENT_WINDOW] = (seq, payload)
        return _Identified(f"{self.epoch}:{seq}", restart=restart, settles=settles)

    def _unsequenced(self) -> str:
        self._extra += 1
        return str(MessageId(self.epoch, self.last_seq or 0, self._extra))
