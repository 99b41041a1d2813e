"""`JetStreamSource`: the relayed frames of a chain from its JetStream stream, through a
durable pull consumer.

Each message is a batch of frames (`frame_batch`), split here and yielded one frame at a
time. Where to start is the caller's: the arena's checkpoint records where its last
settled point stands, a stream sequence and how many frames of that message were applied,
and resuming starts at that message and skips exactly those frames. The durable consumer (its name
shows the consumer on the server; several arenas use several names) is therefore
re-created at that sequence on every start. Messages are fetched in batches and
acknowledged with ack-all, one ack per batch, after the batch was handed on.
A message marked `Exex-Restart` begins a new producer session: `on_restart(seq)` is called
before its first frame is yielded, as a socket client would see its connection end first.
A message that is no exact frame batch (never written by `arena relay`) gives its whole
frames; the rest is logged, counted in `malformed` and seen downstream as a gap.
Messages removed from the stream before they were read (its retention) show as a jump
of the stream sequence: logged, counted in `missing`, and seen downstream as a gap.
NatsClient outages only pause the consumer: nothing in the stream is lost by them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Final, final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from exex_bridge.connection_state import ConnectionState
from exex_bridge.errors import NatsUnavailableError, RelayStreamError
from exex_bridge.frame_batch import BatchFormatError, split_batch
from exex_bridge.redaction import shown_url
from exex_bridge.relay_stream import RESTART_HEADER, frames_subject, stream_name

log = logging.getLogger(__name__)

DEFAULT_BATCH: Final = 256  # messages (each up to [relay] batch_frames frames)
_ACK_WAIT: Final = 60.0
_EXPIRES: Final = 5.0  # a pull request's life on the server
_IDLE_WAIT: Final = 2 * _EXPIRES
_STATUS: Final = "Status"
_PENDING: Final = "Nats-Pending-Messages"


def stream_sequence(msg: Msg) -> int:
    """The message's stream sequence, read from its ack subject
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.…`, or with a domain and an
    account hash before the stream in the newer form)."""
    tokens = msg.reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


@final
class JetStreamSource:
    """`async for payload in source.frames()`; `position` is the stream sequence of the
    message of the frame last yielded, `applied` how many of its frames were yielded.
    `start_seq` None starts at the stream's first message, `skip_frames` skips that many
    frames of the message at `start_seq` (already applied); `stop_seq` ends the
    iteration after that message."""

    def __init__(
        self,
        url: str,
        chain: str,
        durable: str,
        *,
        start_seq: int | None = None,
        skip_frames: int = 0,
        stop_seq: int | None = None,
        batch: int = DEFAULT_BATCH,
        connect_timeout: float = 10.0,
        on_restart: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self.stream = stream_name(chain)
        self.subject = frames_subject(chain)
        self.durable = durable
        self.start_seq = start_seq
        self.skip_frames = skip_frames
        self.stop_seq = stop_seq
        self.batch = batch
        self.connect_timeout = connect_timeout
        self.on_restart = on_restart
        self.position: int | None = None
        self.applied = 0
        self.restarts = 0
        self.redelivered = 0
        self.malformed = 0
        # messages gone from the stream (retention, a purge) before they were read
        self.missing = 0
        self._expected = start_seq  # the next stream sequence, once it is known
        self._state = ConnectionState.NOT_STARTED
        self._closed = asyncio.Event()
        self._nc: NatsClient | None = None
        self._puller: _Puller | None = None

    def checkpoint_position(self) -> tuple[int, int] | None:
        """(stream sequence, frames of that message yielded), None before any frame."""
        return None if self.position is None else (self.position, self.applied)

    @property
    def state(self) -> ConnectionState:
        return self._state

    async def close(self) -> None:
        self._closed.set()
        self._state = ConnectionState.CLOSED
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(nats.errors.Error):
                await nc.close()

    async def frames(self) -> AsyncGenerator[bytes, None]:
        nc = await self._connect()
        try:
            await self._create_consumer(nc)
            puller = self._puller = _Puller(nc, self.stream, self.durable, self.batch)
            await puller.start()
            self._state = ConnectionState.CONNECTED
            stop = self.stop_seq
            skip_at = self.start_seq if self.skip_frames else None
            while not self._closed.is_set():
                msgs = await puller.take()
                for msg in msgs:
                    seq = stream_sequence(msg)
                    if self.position is not None and seq <= self.position:
                        self.redelivered += 1  # after a reconnection: already handed on
                        continue
                    if self._expected is not None and seq > self._expected:
                        self._gone(self._expected, seq - 1)
                    self._expected = seq + 1
                    payloads = self._split(msg.data, seq)
                    skip = 0
                    if seq == skip_at:
                        skip, skip_at = self.skip_frames, None
                    headers = msg.headers
                    if not skip and headers is not None and RESTART_HEADER in headers:
                        self.restarts += 1
                        if self.on_restart is not None:
                            self.on_restart(seq)
                    self.position, self.applied = seq, skip
                    for i in range(skip, len(payloads)):
                        self.applied = i + 1
                        yield payloads[i]
                    if stop is not None and seq >= stop:
                        await self._ack(msg)
                        return
                if msgs:
                    await self._ack(msgs[-1])
        finally:
            await self.close()

    def _gone(self, first: int, last: int) -> None:
        """The stream's sequence jumped: its one subject leaves no holes, so the
        messages between were removed (by the retention's age or bytes, or a purge)
        before this consumer read them."""
        self.missing += last - first + 1
        log.error(
            "stream %s messages %d..%d were removed before this consumer read them "
            "(retention by age or bytes, or a purge): their frames are lost (the arena "
            "sees a stream_seq gap)",
            self.stream,
            first,
            last,
        )

    def _split(self, body: bytes, seq: int) -> list[bytes]:
        try:
            return split_batch(body)
        except BatchFormatError as exc:
            self.malformed += 1
            log.error(
                "stream %s message %d is no frame batch (%s): the frames after its whole "
                "ones are lost (the arena sees a stream_seq gap)",
                self.stream,
                seq,
                exc.reason,
            )
            return exc.frames

    async def _connect(self) -> NatsClient:
        self._state = ConnectionState.CONNECTING

        async def disconnected() -> None:
            if not self._closed.is_set():
                self._state = ConnectionState.DISCONNECTED
                log.warning("NATS connection lost; the consumer waits and continues")

        async def reconnected() -> None:
            self._state = ConnectionState.CONNECTED
            log.info("NATS connection back")
            if self._puller is not None:
                self._puller.ask_again()

        async def error(exc: Exception) -> None:
            log.debug("NATS client error: %r", exc)

        try:
            # With reconnects unbounded the client would retry a first connection forever.
            nc = await asyncio.wait_for(
                nats.connect(
                    self.url,
                    connect_timeout=self.connect_timeout,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.2,
                    disconnected_cb=disconnected,
                    reconnected_cb=reconnected,
                    error_cb=error,
                ),
                self.connect_timeout,
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            reason = str(exc) or f"no connection within {self.connect_timeout:.1f} s"
            raise NatsUnavailableError(shown_url(self.url), reason) from exc
        self._nc = nc
        return nc

    async def _create_consumer(self, nc: NatsClient) -> None:
        js = nc.jetstream()
        try:
            await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            raise RelayStreamError(
                self.stream, "not found: start `arena relay` for this chain first"
            ) from None
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError) as exc:
            raise RelayStreamError(self.stream, f"JetStream did not answer ({exc!r})") from None
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(self.stream, self.durable)
        start = self.start_seq
        config = ConsumerConfig(
            name=self.durable,
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL if start is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            ack_policy=AckPolicy.ALL,
            ack_wait=_ACK_WAIT,
            filter_subject=self.subject,
            max_ack_pending=-1,
        )
        try:
            await js.add_consumer(self.stream, config)
        except nats.js.errors.APIError as exc:
            raise RelayStreamError(
                self.stream, f"consumer {self.durable}: {exc.description}"
            ) from exc
        log.info(
            "consuming %s as %s from %s",
            self.stream,
            self.durable,
            "its first message" if start is None else f"sequence {start}",
        )

    async def _ack(self, msg: Msg) -> None:
        with contextlib.suppress(nats.errors.Error):
            await msg.ack()


@final
class _Puller:
    """Pull requests of `batch` messages kept in flight (two at most), the messages
    gathered by a subscription callback: no per-message wait on the consumer's side."""

    def __init__(self, nc: NatsClient, stream: str, durable: str, batch: int) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._request = json.dumps({"batch": batch, "expires": int(_EXPIRES * 1e9)}).encode()
        self._batch = batch
        self._inbox = nc.new_inbox()
        self._arrived: list[Msg] = []
        self._event = asyncio.Event()
        self._outstanding = 0  # messages asked for and not yet delivered or expired

    async def start(self) -> None:
        await self._nc.subscribe(self._inbox, cb=self._on_msg, pending_msgs_limit=-1)

    async def take(self) -> list[Msg]:
        """The messages arrived so far (waiting for some, up to a moment)."""
        if self._outstanding <= self._batch // 2:
            await self._ask()
        if not self._arrived:
            try:
                await asyncio.wait_for(self._event.wait(), _IDLE_WAIT)
            except TimeoutError:
                # Requests can be lost with a connection: ask again, never wait forever.
                self._outstanding = 0
            self._event.clear()
        msgs, self._arrived = self._arrived, []
        return msgs

    def ask_again(self) -> None:
        """After a reconnection the server may have forgotten the requests in flight."""
        self._outstanding = 0
        self._event.set()

    async def _ask(self) -> None:
        try:
            await self._nc.publish(self._next, self._request, reply=self._inbox)
        except nats.errors.Error as exc:
            log.debug("pull request not sent (%r); retrying", exc)
            return
        self._outstanding += self._batch

    async def _on_msg(self, msg: Msg) -> None:
        if msg.data or not msg.headers or _STATUS not in msg.headers:
            self._arrived.append(msg)
            self._outstanding -= 1
        elif msg.headers[_STATUS] == "408":  # a request expired: what it did not deliver
            self._outstanding -= int(msg.headers.get(_PENDING, 0) or 0)
        elif msg.headers[_STATUS] != "100":  # not a heartbeat: assume nothing is pending
            self._outstanding = 0
        self._event.set()
