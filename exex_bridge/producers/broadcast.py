"""A stand-in for the ExEx socket server, and a builder of correctly sequenced streams.

`FrameBroadcastServer` behaves like the producer's socket server: it binds a path
(replacing a stale socket, mode 0666), accepts any number of clients, broadcasts every
frame to all of them through a bounded per-client queue, and when a client's queue is
full it drops the message and disconnects that client. It never reads what clients send.

`StreamSequencer` numbers messages the way the producer does: one `stream_seq` counter
over every sequenced message, +1 each, from 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, final

from exex_bridge import messages as m
from exex_bridge.codec import encode_frame
from exex_bridge.errors import SocketServeError
from exex_bridge.socket_owner import check_socket_path

log = logging.getLogger(__name__)

DEFAULT_CLIENT_QUEUE: Final = 50_000
_BATCH: Final = 4096

Publishable = m.ControlMessage | bytes


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    """`dropped` counts messages not queued for a lagging client, `lagging_disconnects`
    the clients cut off for it."""

    clients: int
    accepted: int
    published: int
    dropped: int
    lagging_disconnects: int


class _Client:
    __slots__ = ("cut_off", "enqueued", "queue", "sent", "writer")

    def __init__(self, writer: asyncio.StreamWriter, capacity: int) -> None:
        self.writer = writer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(capacity)
        self.enqueued = 0
        self.sent = 0
        self.cut_off = False


@final
class FrameBroadcastServer:
    """`async with FrameBroadcastServer(path) as server: await server.publish(msg)`.

    `publish` takes a message (encoded into one frame) or raw bytes written verbatim,
    which lets a test send a malformed or oversize length prefix.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, client_queue: int = DEFAULT_CLIENT_QUEUE
    ) -> None:
        if client_queue <= 0:
            raise ValueError(f"client_queue must be positive, got {client_queue}")
        self.path = os.fspath(path)
        self.client_queue = client_queue
        self._server: asyncio.Server | None = None
        self._closing = False
        self._clients: set[_Client] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._accepted = 0
        self._published = 0
        self._dropped = 0
        self._lagging = 0

    @property
    def stats(self) -> BroadcastStats:
        return BroadcastStats(
            clients=len(self._clients),
            accepted=self._accepted,
            published=self._published,
            dropped=self._dropped,
            lagging_disconnects=self._lagging,
        )

    async def start(self) -> None:
        self._closing = False
        with contextlib.suppress(FileNotFoundError):
            check_socket_path(self.path, None)  # refuses to delete anything but a socket
            os.unlink(self.path)
        try:
            self._server = await asyncio.start_unix_server(self._serve, self.path)
        except OSError as exc:
            raise SocketServeError(self.path, exc.strerror or str(exc)) from exc
        os.chmod(self.path, 0o666)
        log.info("test producer listening on %s", self.path)

    async def __aenter__(self) -> FrameBroadcastServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def publish(self, item: Publishable) -> None:
        self._broadcast(item if isinstance(item, bytes) else encode_frame(item))

    async def publish_many(self, items: Iterable[Publishable]) -> None:
        for item in items:
            self._broadcast(item if isinstance(item, bytes) else encode_frame(item))

    async def wait_for_clients(self, n: int) -> None:
        """Return once at least `n` clients are connected."""
        await self._wait(lambda: len(self._clients) >= n)

    async def wait_for_accepted(self, n: int) -> None:
        """Return once `n` connections have been accepted in total (reconnects count)."""
        await self._wait(lambda: self._accepted >= n)

    async def flush(self) -> None:
        """Return once every connected client's queue has been handed to its socket."""
        await self._wait(lambda: all(c.sent == c.enqueued for c in self._clients))

    async def close(self) -> None:
        self._closing = True
        if self._server is not None:
            self._server.close()
        for client in list(self._clients):
            self._drop(client)
        # Closing a client's transport ends its handler; cancelling a handler task instead
        # makes asyncio's stream callback log the CancelledError as an error.
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.stat(self.path).st_mode):
                    os.unlink(self.path)

    def _broadcast(self, frame: bytes) -> None:
        self._published += 1
        for client in list(self._clients):
            if client.queue.full():
                self._dropped += 1
                self._lagging += 1
                log.warning("client lagged %d messages behind: disconnecting it", self.client_queue)
                self._cut_off(client)
                continue
            client.queue.put_nowait(frame)
            client.enqueued += 1

    def _cut_off(self, client: _Client) -> None:
        """Stop feeding a lagging client; its sender writes what was queued, then closes."""
        client.cut_off = True
        self._clients.discard(client)
        self._notify()

    def _drop(self, client: _Client) -> None:
        if client in self._clients:
            self._clients.discard(client)
            client.writer.close()
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self._changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted just before close(): nobody would close it later
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        client = _Client(writer, self.client_queue)
        self._clients.add(client)
        self._accepted += 1
        self._notify()
        sender = asyncio.create_task(self._send(client))
        try:
            # The producer never reads; EOF or an error here means the client left.
            while await reader.read(4096):
                pass
        except OSError:
            pass
        finally:
            self._drop(client)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            if task is not None:
                self._handlers.discard(task)

    async def _send(self, client: _Client) -> None:
        queue = client.queue
        while True:
            if client.cut_off and queue.empty():
                client.writer.close()
                return
            batch = [await queue.get()]
            while len(batch) < _BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            client.writer.write(b"".join(batch))
            try:
                await client.writer.drain()
            except OSError:
                self._drop(client)
                return
            client.sent += len(batch)
            self._notify()


@final
class StreamSequencer:
    """Builds sequenced messages with consecutive `stream_seq` numbers.

    `end_block(n)` without `num_updates` uses the number of `pool_update` calls since the
    last `begin_block`; pass it explicitly to build a deliberately inconsistent block.
    """

    __slots__ = ("_next", "_updates")

    def __init__(self, start: int = 1) -> None:
        self._next = start
        self._updates = 0

    @property
    def next_seq(self) -> int:
        return self._next

    def skip(self, count: int) -> None:
        """Leave a gap of `count` numbers, as the producer does when it drops messages."""
        self._next += count

    def _take(self) -> int:
        seq = self._next
        self._next += 1
        return seq

    def begin_block(
        self,
        block_number: int,
        *,
        block_timestamp: int = 0,
        base_fee_per_gas: int = 0,
        is_revert: bool = False,
    ) -> m.BeginBlock:
        self._updates = 0
        return m.BeginBlock(
            stream_seq=self._take(),
            block_number=block_number,
            block_timestamp=block_timestamp,
            base_fee_per_gas=base_fee_per_gas,
            is_revert=is_revert,
        )

    def pool_update(self, event: m.PoolUpdateMessage) -> m.PoolUpdate:
        self._updates += 1
        return m.PoolUpdate(stream_seq=self._take(), event=event)

    def end_block(self, block_number: int, num_updates: int | None = None) -> m.EndBlock:
        count = self._updates if num_updates is None else num_updates
        return m.EndBlock(stream_seq=self._take(), block_number=block_number, num_updates=count)

    def block(
        self,
        block_number: int,
        events: Sequence[m.PoolUpdateMessage],
        *,
        block_timestamp: int = 0,
        base_fee_per_gas: int = 0,
        is_revert: bool = False,
    ) -> list[m.SequencedMessage]:
        """BeginBlock, one PoolUpdate per event in the order given, EndBlock."""
        out: list[m.SequencedMessage] = [
            self.begin_block(
                block_number,
                block_timestamp=block_timestamp,
                base_fee_per_gas=base_fee_per_gas,
                is_revert=is_revert,
            )
        ]
        out.extend(self.pool_update(event) for event in events)
        out.append(self.end_block(block_number))
        return out

    def reorg_start(self, old_range: m.ReorgRange, new_range: m.ReorgRange) -> m.ReorgStart:
        return m.ReorgStart(stream_seq=self._take(), old_range=old_range, new_range=new_range)

    def epilogue(
        self,
        final_tip_block: int,
        update: m.ReorgEpilogueUpdate,
        *,
        final_tip_timestamp: int = 0,
    ) -> m.ReorgEpilogue:
        return m.ReorgEpilogue(
            stream_seq=self._take(),
            final_tip_block=final_tip_block,
            final_tip_timestamp=final_tip_timestamp,
            update=update,
        )

    def reorg_complete(self, final_tip_block: int) -> m.ReorgComplete:
        return m.ReorgComplete(stream_seq=self._take(), final_tip_block=final_tip_block)
