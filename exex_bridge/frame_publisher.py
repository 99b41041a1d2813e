"""Ordered, pipelined publishing of frame batches to one JetStream subject.

Each message is a batch of frames (`frame_batch`), cut by the relay. Publishes are not
awaited one by one. Every message carries its id and, as `Nats-Expected-Last-Msg-Id`, the
id of the message published before it, so JetStream stores a message only right after its
predecessor: the stream never holds frames out of order or with a hole the relay did not
mean. One publish in `ack_every` (and a batch that closes a block, when the last request
is a little old) asks for an ack, and that ack vouches for every message before it. A
refused or unanswered publish, or a lost connection, stops publishing; once NATS answers
again the publisher asks JetStream for the last stored message id and resends, in order
and cut as before, every batch after it (a resend JetStream already holds is dropped by
its deduplication and counted).

Batches wait in memory until they are confirmed. While JetStream is unreachable at most
`max_buffered` frames wait; beyond that new batches are dropped, their frames counted and
logged once per outage (a consumer then sees the `stream_seq` gap). While it is
reachable, more than `window` unconfirmed frames make `put` wait (backpressure towards
the socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Final, NamedTuple, final

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import EXPECTED_LAST_HEADER, MSG_ID_HEADER, RESTART_HEADER

log = logging.getLogger(__name__)

DEFAULT_WINDOW: Final = 16_384
DEFAULT_ACK_EVERY: Final = 16  # messages
DEFAULT_ACK_TIMEOUT: Final = 5.0
_SETTLE_ACK_AGE: Final = 0.005  # a block's end asks for an ack when the last ask is older
_WATCH_EVERY: Final = 0.05
_RETRY_DELAY: Final = 0.2


class _Batch(NamedTuple):
    msg_id: str
    body: bytes
    frames: int
    restart: bool


class _PubAck(msgspec.Struct):
    seq: int = 0
    duplicate: bool = False
    error: dict[str, object] | None = None


_ack_decoder: Final = msgspec.json.Decoder(_PubAck)


@final
class FramePublisher:
    """`await publisher.start(last_id)`, then `await publisher.put(...)` per batch."""

    def __init__(
        self,
        nc: NatsClient,
        stream: str,
        subject: str,
        metrics: RelayMetrics,
        *,
        max_buffered: int,
        window: int = DEFAULT_WINDOW,
        ack_every: int = DEFAULT_ACK_EVERY,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    ) -> None:
        if max_buffered < 1 or window < 1 or ack_every < 1:
            raise ValueError("max_buffered, window and ack_every must be positive")
        self._nc = nc
        self._js = nc.jetstream()
        self.stream = stream
        self.subject = subject
        self.metrics = metrics
        self.max_buffered = max_buffered
        self.window = min(window, max_buffered)
        self.ack_every = ack_every
        self.ack_timeout = ack_timeout
        self._pending: deque[_Batch] = deque()
        self._pending_frames = 0  # frames in _pending
        self._sent = 0  # _pending[:_sent] were published in this session
        self._last_sent: str | None = None  # the stored chain's tail as this session sees it
        self._before_last_sent: str | None = None
        self._session = 0
        self._healthy = True
        self._requests: dict[str, tuple[int, str, float, bool]] = {}
        self._token = 0
        self._since_request = 0
        self._last_request_at = 0.0
        self._sends = 0  # publishes made, probes included (an idle tail is probed)
        self._unflushed_received = 0  # counted here, added to the counters now and then
        self._unflushed_published = 0
        self._progress = asyncio.Event()
        self._connected = asyncio.Event()
        self._connected.set()
        self._carry_restart = False
        self._interrupted = False
        self._drop_logged = False
        self._dropping = False
        self._inbox = ""
        self._sub: Subscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    # -- public -------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Frames held, not yet confirmed."""
        return self._pending_frames

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def last_stored_id(self) -> str | None:
        """The message id of the stream's last message (None: empty stream)."""
        return (await self.last_stored())[0]

    async def last_stored(self) -> tuple[str | None, bytes]:
        """The id and body of the stream's last message ((None, b"") for an empty stream)."""
        try:
            msg = await self._js.get_last_msg(self.stream, self.subject)
        except nats.js.errors.NotFoundError:
            return None, b""
        headers = msg.headers or {}
        found = headers.get(MSG_ID_HEADER)
        return (str(found) if found is not None else None), msg.data or b""

    async def start(self, last_id: str | None) -> None:
        self._last_sent = last_id
        self._inbox = self._nc.new_inbox() + "."
        self._sub = await self._nc.subscribe(self._inbox + "*", cb=self._on_ack)
        self._spawn(self._watch())

    def on_disconnected(self) -> None:
        self._connected.clear()
        self._begin_recovery("connection to NATS lost")

    def on_reconnected(self) -> None:
        self.metrics.nats_reconnects.inc()
        self._connected.set()

    async def put(
        self, msg_id: str, body: bytes, frames: int, *, restart: bool, settles: bool
    ) -> bool:
        """Queue a batch of `frames` frames and publish it when publishing is healthy;
        False if dropped."""
        self._unflushed_received += frames
        while self._healthy and self._pending_frames >= self.window:
            await self._wait_progress()
        if not self._healthy and (
            self._dropping or self._pending_frames + frames > self.max_buffered
        ):
            self._dropping = True  # until the outage ends: the stream keeps one gap
            self._drop(msg_id, frames, restart)
            return False
        batch = _Batch(msg_id, body, frames, restart or self._carry_restart)
        self._carry_restart = False
        self._pending.append(batch)
        self._pending_frames += frames
        if self._healthy and self._sent == len(self._pending) - 1:
            self._since_request += 1
            want = self._since_request >= self.ack_every or (
                settles and time.monotonic() - self._last_request_at >= _SETTLE_ACK_AGE
            )
            await self._send(batch, want_ack=want)
        else:
            self.metrics.buffered.set(self._pending_frames)
        return True

    def skip_repeat(self) -> None:
        """A frame the producer sent again, already relayed: counted, never published."""
        self._unflushed_received += 1
        self.flush_counts()
        self.metrics.duplicates.inc()
        self.metrics.acked.inc()

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued frame is confirmed; False if `timeout` passed first."""
        try:
            async with asyncio.timeout(timeout):
                while self._pending:
                    await self._wait_progress()
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.closed = True
        self.flush_counts()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._sub.unsubscribe()
        if self._pending:
            log.warning("relay stopped with %d frames not confirmed stored", self._pending_frames)

    # -- publishing ---------------------------------------------------------------------
    async def _send(self, batch: _Batch, *, want_ack: bool, probe: bool = False) -> None:
        headers = {MSG_ID_HEADER: batch.msg_id}
        expected = self._before_last_sent if probe else self._last_sent
        if expected is not None:
            headers[EXPECTED_LAST_HEADER] = expected
        if batch.restart:
            headers[RESTART_HEADER] = "1"
        reply = ""
        if want_ack:
            now = time.monotonic()
            self._token += 1
            token = str(self._token)
            self._requests[token] = (self._session, batch.msg_id, now, probe)
            reply = self._inbox + token
            self._since_request = 0
            self._last_request_at = now
        try:
            await self._nc.publish(self.subject, batch.body, reply=reply, headers=headers)
        except (nats.errors.Error, OSError) as exc:
            self._interrupted = True
            self._begin_recovery(f"publish failed: {exc!r}")
            return
        self._sends += 1
        if not probe:
            self._before_last_sent, self._last_sent = self._last_sent, batch.msg_id
            self._sent += 1
            self._unflushed_published += batch.frames

    async def _on_ack(self, msg: Msg) -> None:
        request = self._requests.pop(msg.subject[len(self._inbox) :], None)
        if request is None:
            return
        session, msg_id, _, probe = request
        if session != self._session:
            return  # the recovery read the truth from the stream itself
        try:
            ack = _ack_decoder.decode(msg.data)
        except msgspec.DecodeError:
            ack = _PubAck(error={"description": f"unreadable ack {msg.data[:80]!r}"})
        if ack.error is not None:
            self._interrupted = True  # a resend under way starts again
            self._begin_recovery(f"publish of {msg_id} refused: {ack.error.get('description')}")
            return
        if ack.duplicate and not probe:
            self.metrics.duplicates.inc(self._frames_of(msg_id))
        self._confirm(msg_id)

    def _frames_of(self, msg_id: str) -> int:
        for i in range(self._sent):
            if self._pending[i].msg_id == msg_id:
                return self._pending[i].frames
        return 1

    def _confirm(self, msg_id: str) -> None:
        """`msg_id` is stored, hence every message sent before it."""
        pending = self._pending
        for i in range(self._sent):
            if pending[i].msg_id == msg_id:
                frames = 0
                for _ in range(i + 1):
                    frames += pending.popleft().frames
                self._pending_frames -= frames
                self._sent -= i + 1
                self.flush_counts()  # received and published never trail acked
                self.metrics.acked.inc(frames)
                self.metrics.buffered.set(self._pending_frames)
                self._wake()
                return

    def _drop(self, msg_id: str, frames: int, restart: bool) -> None:
        self.metrics.dropped.inc(frames)
        self._carry_restart = self._carry_restart or restart
        if not self._drop_logged:
            self._drop_logged = True
            log.error(
                "relay buffer full (%d frames) while JetStream is unreachable: dropping "
                "frames from %s on (consumers will see the gap); counted in "
                "arena_relay_frames_dropped_total",
                self.max_buffered,
                msg_id,
            )

    def _wake(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def _wait_progress(self) -> None:
        await self._progress.wait()

    # -- failure and recovery -----------------------------------------------------------
    def _begin_recovery(self, reason: str) -> None:
        if not self._healthy or self.closed:
            return
        self._healthy = False
        self._session += 1
        self._requests.clear()
        self.metrics.recoveries.inc()
        log.warning(
            "publishing to %s paused (%s); %d frames held, resending from the last stored",
            self.stream,
            reason,
            self._pending_frames,
        )
        self._wake()
        self._spawn(self._recover())

    async def _recover(self) -> None:
        while not self.closed:
            await self._connected.wait()
            self._session += 1  # acks of earlier attempts are ignored from here on
            self._requests.clear()
            self._interrupted = False
            try:
                await self._nc.flush(timeout=max(1, round(self.ack_timeout)))
                self._resume_after(await self.last_stored_id())
                while self._sent < len(self._pending) and not self._interrupted:
                    batch = self._pending[self._sent]
                    self._since_request += 1
                    last_one = self._sent == len(self._pending) - 1
                    await self._send(
                        batch, want_ack=last_one or self._since_request >= self.ack_every
                    )
            except (nats.errors.Error, nats.js.errors.Error, OSError, TimeoutError) as exc:
                log.debug("recovery attempt failed: %r", exc)
                self._interrupted = True
            if self._interrupted:
                await asyncio.sleep(_RETRY_DELAY)
                continue
            self._healthy = True
            self._drop_logged = False
            self._dropping = False
            log.info(
                "publishing to %s resumed (%d frames unconfirmed)",
                self.stream,
                self._pending_frames,
            )
            self._wake()
            return

    def _resume_after(self, last: str | None) -> None:
        """Forget the frames the stream holds (up to `last`); resend the rest after it."""
        pending = self._pending
        for i, batch in enumerate(pending):
            if batch.msg_id == last:
                frames = 0
                for _ in range(i + 1):
                    frames += pending.popleft().frames
                self._pending_frames -= frames
                self.metrics.acked.inc(frames)
                break
        self.metrics.buffered.set(self._pending_frames)
        self._sent = 0
        self._since_request = 0
        self._last_sent = last
        self._before_last_sent = None

    def flush_counts(self) -> None:
        """Add the frames received and published since the last call to the counters
        (per frame, the counters' lock would cost more than the rest of a frame)."""
        received, self._unflushed_received = self._unflushed_received, 0
        published, self._unflushed_published = self._unflushed_published, 0
        if received:
            self.metrics.frames_in.inc(received)
        if published:
            self.metrics.published.inc(published)

    async def _watch(self) -> None:
        """Counters flushed; unanswered acks start a recovery; an idle unconfirmed tail
        (no publish for a whole tick) is probed."""
        sends_seen = -1
        while True:
            await asyncio.sleep(_WATCH_EVERY)
            self.flush_counts()
            idle, sends_seen = self._sends == sends_seen, self._sends
            if not self._healthy:
                continue
            now = time.monotonic()
            oldest = min((sent_at for _, _, sent_at, _ in self._requests.values()), default=now)
            if now - oldest > self.ack_timeout:
                self._begin_recovery(f"no ack within {self.ack_timeout:.1f} s")
            elif idle and self._sent and not self._requests and self._sent == len(self._pending):
                # Publish the last batch again: stored, it is a duplicate and the ack says
                # so; lost, its predecessor is checked and it is stored now.
                await self._send(self._pending[self._sent - 1], want_ack=True, probe=True)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
