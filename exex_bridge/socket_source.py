"""The Unix socket source: an asyncio client of the ExEx's pool-update socket.

The ExEx is the server and has no replay: every disconnect may lose messages. The source
therefore counts everything a consumer needs to decide it is unsynced (disconnects,
`stream_seq` gaps and resets, a per-connection `generation`) and reports each disconnect
to an optional callback. It connects, only reads, and reconnects with a capped, jittered,
cancellable exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Final, final

from exex_bridge.backoff import Backoff
from exex_bridge.codec import SEQUENCED_TAGS, decode_message
from exex_bridge.connection_state import ConnectionState
from exex_bridge.errors import CodecError, FrameTooLargeError, SocketUnavailableError
from exex_bridge.framing import DEFAULT_MAX_FRAME, FrameSplitter
from exex_bridge.messages import ControlMessage
from exex_bridge.socket_owner import SocketOwners, check_socket_path, expected_uids

__all__ = [
    "DEFAULT_SOCKET_PATH",
    "Backoff",
    "Disconnection",
    "SocketOwners",
    "SocketSource",
    "SocketSourceStats",
]

log = logging.getLogger(__name__)

DEFAULT_SOCKET_PATH: Final = "/tmp/reth_exex_pool_updates.sock"
DEFAULT_READ_CHUNK: Final = 256 * 1024

_TAG_SEQ = struct.Struct("<IQ")
# A connection is stable once it delivered a whole block or reorg envelope (the frame that
# closes one): only then is the reconnect backoff reset. One good frame before a bad one
# proves nothing, and resetting on it lets a broken producer cause a reconnect storm.
_SETTLING_TAGS: Final = frozenset({3, 8})  # EndBlock, ReorgComplete


@dataclass(frozen=True, slots=True)
class Disconnection:
    """One lost connection: everything after it may follow a gap."""

    generation: int
    reason: str
    frames: int
    last_stream_seq: int | None
    discarded_bytes: int


@dataclass(slots=True)
class _Counters:
    connect_attempts: int = 0
    reconnect_attempts: int = 0
    connect_failures: int = 0
    connects: int = 0
    disconnects: int = 0
    frames: int = 0
    bytes: int = 0
    oversize_frames: int = 0
    truncated_frames: int = 0
    decode_errors: int = 0
    last_stream_seq: int | None = None
    seq_gaps: int = 0
    seq_missing: int = 0
    seq_resets: int = 0


@dataclass(frozen=True, slots=True)
class SocketSourceStats:
    """A snapshot. `seq_gaps` counts forward jumps of stream_seq (`seq_missing` the
    messages skipped by them), `seq_resets` decreases or repeats (a producer restart);
    `truncated_frames` counts connections that ended inside a frame."""

    state: ConnectionState
    generation: int
    connect_attempts: int
    reconnect_attempts: int
    connect_failures: int
    connects: int
    disconnects: int
    frames: int
    bytes: int
    oversize_frames: int
    truncated_frames: int
    decode_errors: int
    last_stream_seq: int | None
    seq_gaps: int
    seq_missing: int
    seq_resets: int


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@final
class SocketSource:
    """Reads the ExEx socket: `async for payload in source.frames()` or `source.messages()`.

    `generation` is 0 before the first connection and +1 per connection, so a consumer
    that sees it change knows a reconnect (and a possible loss) happened. One iteration
    at a time; `close()` (or leaving `async with`) ends it cleanly.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_SOCKET_PATH,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        read_chunk: int = DEFAULT_READ_CHUNK,
        expected_owners: Iterable[int | str] | SocketOwners | None = (
            SocketOwners.CURRENT_USER_OR_ROOT
        ),
        backoff: Backoff | None = None,
        connect_timeout: float | None = None,
        on_disconnect: Callable[[Disconnection], None] | None = None,
    ) -> None:
        if max_frame <= 0 or read_chunk <= 0:
            raise ValueError("max_frame and read_chunk must be positive")
        self.path = os.fspath(path)
        self.max_frame = max_frame
        self.expected_uids = expected_uids(expected_owners)
        self.connect_timeout = connect_timeout
        self._read_chunk = read_chunk
        self._backoff = backoff if backoff is not None else Backoff()
        self._on_disconnect = on_disconnect
        self._counters = _Counters()
        self._state = ConnectionState.DISCONNECTED
        self._state_changed = asyncio.Event()
        self._generation = 0
        self._closed = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._iterating = False
        self._delay_next_connect = False

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def stats(self) -> SocketSourceStats:
        return SocketSourceStats(
            state=self._state, generation=self._generation, **asdict(self._counters)
        )

    async def wait_for_state(self, state: ConnectionState) -> None:
        """Return once the source is in `state`, checked at every state change: a state
        left again before this task runs (CONNECTING, when the attempt fails at once) is
        missed, so wait for the lasting ones (CONNECTED, BACKING_OFF, CLOSED)."""
        while self._state is not state:
            await self._state_changed.wait()

    async def close(self) -> None:
        self._closed.set()
        if self._writer is not None:
            self._writer.close()
        self._set_state(ConnectionState.CLOSED)

    async def __aenter__(self) -> SocketSource:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def frames(self) -> AsyncGenerator[bytes, None]:
        """Every frame payload (without its length prefix), across reconnects."""
        if self._iterating:
            raise RuntimeError("SocketSource is already being iterated")
        self._iterating = True
        try:
            while not self._closed.is_set():
                connection = await self._connect()
                if connection is None:
                    return
                reader, writer = connection
                self._writer = writer
                try:
                    async with contextlib.aclosing(self._read(reader)) as payloads:
                        async for payload in payloads:
                            yield payload
                finally:
                    writer.close()
                    self._writer = None
        finally:
            self._iterating = False
            self._set_state(ConnectionState.DISCONNECTED)

    async def messages(self) -> AsyncGenerator[ControlMessage, None]:
        """Decoded messages. An undecodable frame is counted, logged and skipped: framing
        is intact, and the consumer sees the skipped message as a stream_seq gap."""
        async with contextlib.aclosing(self.frames()) as frames:
            async for payload in frames:
                try:
                    msg = decode_message(payload)
                except CodecError as exc:
                    self._counters.decode_errors += 1
                    log.warning(
                        "skipping undecodable frame from %s (stream_seq %s, generation %d): %s",
                        self.path,
                        exc.stream_seq,
                        self._generation,
                        exc,
                    )
                    continue
                yield msg

    def _set_state(self, state: ConnectionState) -> None:
        if self._state is ConnectionState.CLOSED or self._state is state:
            return
        self._state = state
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    async def _connect(self) -> _Connection | None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        announced = False
        while not self._closed.is_set():
            if self._delay_next_connect and not await self._back_off(started):
                return None
            self._delay_next_connect = True
            self._set_state(ConnectionState.CONNECTING)
            self._counters.connect_attempts += 1
            if self._generation:
                self._counters.reconnect_attempts += 1
            try:
                check_socket_path(self.path, self.expected_uids)
                reader, writer = await asyncio.open_unix_connection(
                    self.path, limit=self._read_chunk
                )
            except OSError as exc:
                self._counters.connect_failures += 1
                # Said once per outage; the retries themselves are only debug noise.
                level = logging.DEBUG if announced else logging.WARNING
                log.log(level, "cannot connect to %s (%s); retrying with backoff", self.path, exc)
                announced = True
                self._check_deadline(loop.time() - started, exc)
                continue
            if self._closed.is_set():
                writer.close()
                return None
            self._generation += 1
            self._counters.connects += 1
            self._set_state(ConnectionState.CONNECTED)
            log.info("connected to %s (generation %d)", self.path, self._generation)
            return reader, writer
        return None

    def _check_deadline(self, waited: float, exc: OSError) -> None:
        if self.connect_timeout is None or self._counters.connects:
            return
        if waited >= self.connect_timeout:
            raise SocketUnavailableError(self.path, waited, str(exc)) from exc

    async def _back_off(self, started: float) -> bool:
        """Sleep the next backoff delay; False if the source was closed meanwhile."""
        delay = self._backoff.next_delay()
        if self.connect_timeout is not None and not self._counters.connects:
            remaining = self.connect_timeout - (asyncio.get_running_loop().time() - started)
            delay = max(0.0, min(delay, remaining))
        self._set_state(ConnectionState.BACKING_OFF)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), delay)
        return not self._closed.is_set()

    async def _read(self, reader: asyncio.StreamReader) -> AsyncGenerator[bytes, None]:
        splitter = FrameSplitter(self.max_frame)
        counters = self._counters
        frames = 0
        stable = False
        reason = "end of stream"
        while True:
            try:
                chunk = await reader.read(self._read_chunk)
            except OSError as exc:
                reason = f"read error: {exc}"
                break
            if not chunk:
                break
            counters.bytes += len(chunk)
            try:
                payloads = splitter.feed(chunk)
            except FrameTooLargeError:
                payloads = []
            frames += len(payloads)
            for payload in payloads:
                self._track(payload)
                if not stable and _tag_of(payload) in _SETTLING_TAGS:
                    stable = True
                    self._backoff.reset()
                    self._delay_next_connect = False
                yield payload
            oversize = splitter.error
            if oversize is not None:
                # Never allocate it: drop the connection, the producer will be re-read fresh.
                # The whole frames before the bad prefix were delivered above.
                counters.oversize_frames += 1
                log.error("dropping connection to %s: %s", self.path, oversize)
                reason = f"oversize frame ({oversize.length} bytes)"
                break
        if not self._closed.is_set():
            self._disconnected(reason, frames, splitter.buffered)

    @property
    def backoff_attempts(self) -> int:
        """Reconnect delays taken since the backoff was last reset by a stable connection."""
        return self._backoff.attempts

    def _track(self, payload: bytes) -> None:
        counters = self._counters
        counters.frames += 1
        if len(payload) < 12:
            return
        tag, seq = _TAG_SEQ.unpack_from(payload)
        if tag not in SEQUENCED_TAGS:
            return
        last = counters.last_stream_seq
        if last is not None and seq != last + 1:
            if seq > last:
                counters.seq_gaps += 1
                counters.seq_missing += seq - last - 1
                log.warning("stream_seq jumped from %d to %d: messages were lost", last, seq)
            else:
                counters.seq_resets += 1
                log.warning("stream_seq went from %d back to %d: producer restarted", last, seq)
        counters.last_stream_seq = seq

    def _disconnected(self, reason: str, frames: int, discarded: int) -> None:
        counters = self._counters
        counters.disconnects += 1
        if discarded:
            counters.truncated_frames += 1
        self._set_state(ConnectionState.DISCONNECTED)
        log.warning(
            "disconnected from %s (generation %d, %s) after %d frames; "
            "messages may be lost until the next connection",
            self.path,
            self._generation,
            reason,
            frames,
        )
        if self._on_disconnect is not None:
            self._on_disconnect(
                Disconnection(
                    generation=self._generation,
                    reason=reason,
                    frames=frames,
                    last_stream_seq=counters.last_stream_seq,
                    discarded_bytes=discarded,
                )
            )


def _tag_of(payload: bytes) -> int | None:
    return int.from_bytes(payload[:4], "little") if len(payload) >= 4 else None
