"""Where `arena execute` reads opportunities: a JSONL file being appended to (followed
like `tail -f`), or a NATS subject (`arena.{chain}.opportunities`, as a queue group so
that several executors share the work).

Both give batches through `next_batch(timeout)`: every opportunity that arrived, or an
empty list when the timeout passed first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Final, Protocol, final

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from executor.errors import ExecutorError
from pathfinder.opportunity import OPPORTUNITY_DECODER, Opportunity
from pathfinder.sinks import opportunities_subject

log = logging.getLogger(__name__)

FILE_POLL_S: Final = 0.05
QUEUE_GROUP: Final = "arena-executors"
_READ_CHUNK: Final = 1 << 20


_CONNECT_TIMEOUT_S: Final = 5.0


class FeedError(ExecutorError):
    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"opportunities from {source}: {reason}")


class OpportunityFeed(Protocol):
    async def next_batch(self, timeout: float) -> list[Opportunity]: ...

    async def close(self) -> None: ...


def _decode(line: bytes, source: str) -> Opportunity | None:
    try:
        return OPPORTUNITY_DECODER.decode(line)
    except msgspec.DecodeError as exc:
        log.warning("skipped an undecodable opportunity from %s: %s", source, exc)
        return None


@final
class JsonlFeed:
    """Follows a JSONL file from its start: complete lines only, new ones as they come."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.skipped = 0
        self._offset = 0
        self._partial = b""

    def _read_lines(self) -> list[bytes]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read(_READ_CHUNK)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise FeedError(str(self.path), exc.strerror or str(exc)) from None
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        return [line for line in lines if line.strip()]

    async def next_batch(self, timeout: float) -> list[Opportunity]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = []
            for line in self._read_lines():
                opportunity = _decode(line, str(self.path))
                if opportunity is None:
                    self.skipped += 1
                else:
                    found.append(opportunity)
            left = deadline - loop.time()
            if found or left <= 0:
                return found
            await asyncio.sleep(min(FILE_POLL_S, left))

    async def close(self) -> None:
        return None


@final
class NatsFeed:
    """Subscribes to `arena.{chain}.opportunities` in the executors' queue group."""

    def __init__(self, client: NatsClient, subject: str) -> None:
        self.client = client
        self.subject = subject
        self.skipped = 0
        self._queue: asyncio.Queue[Opportunity] = asyncio.Queue()

    @classmethod
    async def connect(cls, url: str, chain: str) -> NatsFeed:
        try:
            # Unbounded reconnection once connected; the client would retry a first
            # connection forever.
            client = await asyncio.wait_for(
                nats.connect(url, connect_timeout=_CONNECT_TIMEOUT_S, max_reconnect_attempts=-1),
                _CONNECT_TIMEOUT_S,
            )
        except (OSError, TimeoutError, nats.errors.NoServersError) as exc:
            raise FeedError(url, f"cannot connect: {exc}") from None
        feed = cls(client, opportunities_subject(chain))
        await client.subscribe(feed.subject, queue=QUEUE_GROUP, cb=feed._on_message)
        await client.flush()
        log.info("subscribed to %s (queue group %s)", feed.subject, QUEUE_GROUP)
        return feed

    async def _on_message(self, msg: Msg) -> None:
        opportunity = _decode(msg.data, self.subject)
        if opportunity is None:
            self.skipped += 1
        else:
            self._queue.put_nowait(opportunity)

    async def next_batch(self, timeout: float) -> list[Opportunity]:
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        batch = [first]
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a broken connection: nothing to do
            await self.client.drain()


async def open_feed(source: str, chain: str) -> OpportunityFeed:
    if source.startswith("nats://"):
        return await NatsFeed.connect(source, chain)
    return JsonlFeed(source)
