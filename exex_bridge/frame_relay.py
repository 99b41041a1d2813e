"""`FrameRelay`: the ExEx socket's frames, byte for byte, into the chain's JetStream stream.

The relay reads the socket (`SocketSource`: reconnects with backoff), gathers consecutive
frames into batches and hands each batch to a `FramePublisher` under its message id
(`relay_stream.BatchId`). A batch is cut after a settle point (an EndBlock outside a
reorg envelope, a ReorgComplete: a settled block reaches the arenas at once), at
`batch_frames` frames or `batch_bytes` bytes, before a producer restart, and when its
first frame has waited `linger` seconds (a producer that stops inside a block).

It keeps the producer's sessions apart: a `stream_seq` that goes back is a producer
restart, starts a new epoch and begins a batch marked `Exex-Restart` - unless the frame
is a byte-identical repeat of a recent one, which is relayed already and is skipped
(counted as a duplicate). A `stream_seq` that jumps forward is passed on as it is:
consumers see the gap. On start the epoch and the last frame's position are read back
from the stream's last message, and its frames are remembered as recent: a restarted
relay continues after the last stored frame, and a producer that repeats those frames
does not store them twice, however the batches are cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from dataclasses import dataclass
from typing import Final, NamedTuple, final

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from exex_bridge.codec import SEQUENCED_TAGS
from exex_bridge.errors import NatsUnavailableError
from exex_bridge.frame_batch import BatchFormatError, encode_batch, split_batch
from exex_bridge.frame_publisher import FramePublisher
from exex_bridge.redaction import shown_url
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import (
    BatchId,
    MessageId,
    Retention,
    ensure_stream,
    frames_subject,
)
from exex_bridge.socket_source import SocketSource

log = logging.getLogger(__name__)

RECENT_WINDOW: Final = 4096  # frames kept to tell a repeat from a restart (as the arena does)
_TAG_SEQ: Final = struct.Struct("<IQ")
_END_BLOCK: Final = 3
_REORG_START: Final = 6
_REORG_COMPLETE: Final = 8
DEFAULT_BATCH_FRAMES: Final = 1024
DEFAULT_BATCH_BYTES: Final = 512 * 1024  # NATS refuses messages above 1 MiB by default
DEFAULT_LINGER: Final = 0.003


class _Identified(NamedTuple):
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
    batch_frames: int = DEFAULT_BATCH_FRAMES
    batch_bytes: int = DEFAULT_BATCH_BYTES
    linger: float = DEFAULT_LINGER


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
        self._in_envelope = False  # between a ReorgStart and its ReorgComplete
        # the last RECENT_WINDOW sequenced frames, by stream_seq modulo the window
        self._recent: list[tuple[int, bytes] | None] = [None] * RECENT_WINDOW
        # the batch being gathered: its payloads, bytes, first frame's position and time
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._batch_first = MessageId(0, 0)
        self._batch_restart = False
        self._batch_settles = False
        self._batch_started = 0.0
        # the linger task sleeps until a batch opens (never polls an idle stream)
        self._batch_opened = asyncio.Event()
        self._batch_number = 0
        self._put_lock = asyncio.Lock()  # batches reach the publisher in the order cut

    @property
    def position(self) -> MessageId:
        """The position of the last frame relayed (or read back from the stream)."""
        return MessageId(self.epoch, self.last_seq or 0, self._extra)

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
        last_id, body = await publisher.last_stored()
        last = BatchId.parse(last_id) if last_id is not None else None
        if last is not None:
            self.epoch, self.last_seq, self._extra = last.last.epoch, last.last.seq, last.last.extra
            self._remember(body)
            log.info(
                "stream %s ends at message %s: continuing epoch %d after frame %s",
                stream,
                last_id,
                self.epoch,
                last.last,
            )
        await publisher.start(last_id)
        publisher_hook.append(publisher)
        self.publisher = publisher
        return publisher

    async def run(self) -> None:
        publisher = self.publisher
        if publisher is None:
            raise RuntimeError("FrameRelay.open() first")
        options = self.options
        max_frames, max_bytes = options.batch_frames, options.batch_bytes
        batch = self._batch
        lingering = asyncio.create_task(self._linger(publisher))
        try:
            async with contextlib.aclosing(self.source.frames()) as frames:
                async for payload in frames:
                    before = self.epoch, self.last_seq, self._extra  # the previous frame
                    frame = self._identify(payload)
                    if frame.repeat:
                        publisher.skip_repeat()
                        continue
                    size = len(payload) + 4
                    if batch and (frame.restart or self._batch_bytes + size > max_bytes):
                        epoch, seq, extra = before
                        await self._cut(publisher, MessageId(epoch, seq or 0, extra))
                    if not batch:
                        self._batch_first = self.position
                        self._batch_restart = frame.restart
                        self._batch_started = time.monotonic()
                        self._batch_number += 1
                        self._batch_opened.set()
                    batch.append(payload)
                    self._batch_bytes += size
                    if frame.settles or len(batch) >= max_frames or self._batch_bytes >= max_bytes:
                        self._batch_settles = frame.settles
                        await self._cut(publisher)
            if batch:
                await self._cut(publisher)
        finally:
            lingering.cancel()
            await asyncio.gather(lingering, return_exceptions=True)

    async def _cut(self, publisher: FramePublisher, last: MessageId | None = None) -> None:
        """Hand the gathered batch, ending at frame `last` (default: `position`), to the
        publisher, in the order batches are cut."""
        batch = self._batch
        if not batch:
            return
        msg_id = str(BatchId(self._batch_first, last or self.position))
        body = encode_batch(batch)
        frames, restart, settles = len(batch), self._batch_restart, self._batch_settles
        batch.clear()
        self._batch_bytes = 0
        self._batch_settles = False
        async with self._put_lock:
            await publisher.put(msg_id, body, frames, restart=restart, settles=settles)

    async def _linger(self, publisher: FramePublisher) -> None:
        """Cut a batch whose first frame waited `linger` seconds for the rest. Idle
        between batches: it wakes when one opens, and once more when its time is up."""
        linger = self.options.linger
        opened = self._batch_opened
        while True:
            await opened.wait()
            opened.clear()
            number = self._batch_number
            wait = self._batch_started + linger - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._batch and self._batch_number == number:  # still the same batch
                await self._cut(publisher)

    def _remember(self, body: bytes) -> None:
        """The stored frames of the last message count as recent: repeated, they are
        skipped."""
        try:
            payloads = split_batch(body)
        except BatchFormatError as exc:
            log.warning("the stream's last message is no frame batch (%s)", exc)
            payloads = exc.frames
        for payload in payloads:
            if len(payload) >= 12:
                tag, seq = _TAG_SEQ.unpack_from(payload)
                if tag in SEQUENCED_TAGS:
                    self._recent[seq % RECENT_WINDOW] = (seq, payload)

    async def close(self) -> None:
        """Give the held frames `drain_timeout` to be confirmed, then stop publishing."""
        publisher = self.publisher
        if publisher is not None:
            if self._batch:  # the frames gathered so far go too
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.drain_timeout):
                        await self._cut(publisher)
            if publisher.buffered and not await publisher.drain(self.options.drain_timeout):
                log.warning("%d frames not confirmed before the relay stopped", publisher.buffered)
            await publisher.close()
        with contextlib.suppress(nats.errors.Error, asyncio.CancelledError):
            await self.nc.drain()

    def _identify(self, payload: bytes) -> _Identified:
        """Move `position` to the frame (unless it repeats a recent frame); whether it
        starts a producer session, repeats a recent frame, settles a block."""
        if len(payload) < 12:
            self._extra += 1
            return _Identified()
        tag, seq = _TAG_SEQ.unpack_from(payload)
        if tag not in SEQUENCED_TAGS:
            self._extra += 1
            return _Identified()
        last = self.last_seq
        if last is not None and seq <= last:
            if self._recent[seq % RECENT_WINDOW] == (seq, payload):
                return _Identified(repeat=True)
            self.epoch += 1
            self._in_envelope = False
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
        if tag == _END_BLOCK:
            settles = not self._in_envelope
        elif tag == _REORG_COMPLETE:
            settles, self._in_envelope = True, False
        else:
            settles = False
            if tag == _REORG_START:
                self._in_envelope = True
        return _Identified(restart=restart, settles=settles)
