"""SocketSource against the in-repo producer on a real Unix socket."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import struct
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exex_bridge import messages as m
from exex_bridge.backoff import Backoff
from exex_bridge.codec import decode_message, encode_frame, encode_message
from exex_bridge.connection_state import ConnectionState
from exex_bridge.errors import NotASocketError, SocketOwnershipError, SocketUnavailableError
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from exex_bridge.socket_owner import resolve_owners
from exex_bridge.socket_source import Disconnection, SocketSource
from tests.exex_bridge.socket_streams import committed_blocks, socket_path_in

WAIT = 30.0  # upper bound for any single wait; the events normally arrive in milliseconds


def fast_backoff() -> Backoff:
    return Backoff(initial=0.005, maximum=0.05, multiplier=2.0, jitter=0.5)


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path)


class Collector:
    """Drains `source.frames()` in a task; the test awaits (generation, payload) pairs."""

    def __init__(self, source: SocketSource) -> None:
        self.source = source
        self.queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for payload in self.source.frames():
            self.queue.put_nowait((self.source.generation, payload))

    async def take(self, n: int) -> list[tuple[int, bytes]]:
        async def take_all() -> list[tuple[int, bytes]]:
            return [await self.queue.get() for _ in range(n)]

        return await asyncio.wait_for(take_all(), WAIT)


class DisconnectLog:
    """An `on_disconnect` callback the test can await."""

    def __init__(self) -> None:
        self.events: list[Disconnection] = []
        self.seen = asyncio.Event()

    def __call__(self, event: Disconnection) -> None:
        self.events.append(event)
        self.seen.set()
        self.seen = asyncio.Event()

    async def wait_for(self, count: int) -> None:
        while len(self.events) < count:
            await asyncio.wait_for(self.seen.wait(), WAIT)


# --- (a) ordered delivery ------------------------------------------------------------------


async def test_delivers_100000_frames_in_order_byte_exact(sock: str) -> None:
    messages = committed_blocks(StreamSequencer(), 19_000_000, 1_000, 98)
    frames = [encode_frame(msg) for msg in messages]
    assert len(frames) == 100_000
    async with FrameBroadcastServer(sock) as server, SocketSource(sock) as source:
        collector = Collector(source)
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        for start in range(0, len(frames), 10_000):
            await server.publish_many(frames[start : start + 10_000])
            await asyncio.wait_for(server.flush(), WAIT)
        received = await collector.take(len(frames))
    stats = source.stats
    assert [payload for _, payload in received] == [f[4:] for f in frames]
    seqs = [getattr(decode_message(payload), "stream_seq", None) for _, payload in received]
    assert seqs == list(range(1, 100_001))
    assert {generation for generation, _ in received} == {1}
    assert stats.frames == 100_000
    assert stats.bytes == sum(map(len, frames))
    assert stats.last_stream_seq == 100_000
    assert (stats.seq_gaps, stats.seq_resets, stats.disconnects) == (0, 0, 0)
    assert stats.state is ConnectionState.CLOSED
    assert server.stats.dropped == 0


async def test_messages_skip_an_undecodable_frame_but_keep_the_connection(
    sock: str, caplog: pytest.LogCaptureFixture
) -> None:
    seq = StreamSequencer()
    good = committed_blocks(seq, 5, 1, 2)  # seq 1..4
    bad_payload = encode_message(seq.end_block(5, 0)) + b"\x00"  # one byte left over, seq 5
    after = committed_blocks(seq, 6, 1, 0)  # seq 6..7
    caplog.set_level(logging.WARNING, logger="exex_bridge.socket_source")
    async with FrameBroadcastServer(sock) as server, SocketSource(sock) as source:
        got: asyncio.Queue[m.ControlMessage] = asyncio.Queue()

        async def consume() -> None:
            async for msg in source.messages():
                got.put_nowait(msg)

        task = asyncio.create_task(consume())
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        bad_frame = struct.pack("<I", len(bad_payload)) + bad_payload
        await server.publish_many([*good, bad_frame, *after])
        received = [await asyncio.wait_for(got.get(), WAIT) for _ in range(len(good + after))]
        stats = source.stats
    await task
    assert received == good + after
    assert stats.decode_errors == 1
    assert stats.disconnects == 0
    assert stats.frames == 7
    undecodable = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(undecodable) == 1
    assert "stream_seq 5" in undecodable[0].getMessage()


# --- (b) producer restart ------------------------------------------------------------------


async def test_producer_restart_is_counted_as_disconnect_and_seq_reset_then_gap(
    sock: str,
) -> None:
    log = DisconnectLog()
    events = log.events
    source = SocketSource(sock, backoff=fast_backoff(), on_disconnect=log)
    collector = Collector(source)
    async with FrameBroadcastServer(sock) as first:
        await asyncio.wait_for(first.wait_for_clients(1), WAIT)
        await first.publish_many(committed_blocks(StreamSequencer(), 100, 1, 3))  # seq 1..5
        assert [g for g, _ in await collector.take(5)] == [1] * 5
    await log.wait_for(1)
    assert source.stats.disconnects == 1
    assert events[0].generation == 1
    assert events[0].last_stream_seq == 5
    assert events[0].frames == 5

    async with FrameBroadcastServer(sock) as second:  # restarted: stream_seq from 1 again
        await asyncio.wait_for(second.wait_for_clients(1), WAIT)
        await second.publish_many(committed_blocks(StreamSequencer(), 101, 1, 1))  # seq 1..3
        received = await collector.take(3)
    assert [g for g, _ in received] == [2, 2, 2]
    stats = source.stats
    assert (stats.seq_resets, stats.seq_gaps, stats.generation) == (1, 0, 2)

    async with FrameBroadcastServer(sock) as third:  # messages 4..49 were lost meanwhile
        await asyncio.wait_for(third.wait_for_clients(1), WAIT)
        await third.publish_many(committed_blocks(StreamSequencer(start=50), 102, 1, 0))
        received = await collector.take(2)
    await log.wait_for(3)
    await source.close()
    await asyncio.wait_for(collector.task, WAIT)
    stats = source.stats
    assert [g for g, _ in received] == [3, 3]
    assert stats.generation == 3
    assert stats.connects == 3
    assert stats.disconnects == 3
    assert (stats.seq_resets, stats.seq_gaps, stats.seq_missing) == (1, 1, 46)
    assert stats.last_stream_seq == 51
    assert stats.reconnect_attempts >= 2
    assert [e.generation for e in events] == [1, 2, 3]


# --- (c) oversize length prefix ------------------------------------------------------------


async def test_oversize_length_prefix_drops_connection_without_allocating(sock: str) -> None:
    log = DisconnectLog()
    claimed = 1 << 30  # 1 GiB; the cap below is 1 MiB
    seq = StreamSequencer()
    async with FrameBroadcastServer(sock) as server:
        source = SocketSource(sock, max_frame=1 << 20, backoff=fast_backoff(), on_disconnect=log)
        collector = Collector(source)
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        await server.publish(seq.begin_block(1))
        await collector.take(1)
        tracemalloc.start()
        try:
            await server.publish(struct.pack("<I", claimed) + b"\x01" * 64)
            await log.wait_for(1)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 << 20
        await asyncio.wait_for(server.wait_for_accepted(2), WAIT)
        await server.publish(seq.end_block(1))
        ((generation, payload),) = await collector.take(1)
        await source.close()
    await asyncio.wait_for(collector.task, WAIT)
    stats = source.stats
    assert generation == 2
    assert decode_message(payload) == m.EndBlock(stream_seq=2, block_number=1, num_updates=0)
    assert stats.oversize_frames == 1
    assert stats.disconnects == 1
    assert stats.frames == 2
    assert "oversize" in log.events[0].reason


async def test_one_good_frame_does_not_reset_the_backoff(sock: str) -> None:
    """A producer that sends one frame then garbage on every connection: each reconnect
    waits longer than the one before (no reconnect storm). A whole block resets it."""
    log = DisconnectLog()
    seq = StreamSequencer()
    bad = struct.pack("<I", 1 << 30)
    async with FrameBroadcastServer(sock) as server:
        source = SocketSource(sock, max_frame=1 << 20, backoff=fast_backoff(), on_disconnect=log)
        collector = Collector(source)
        for connection in range(1, 7):
            await asyncio.wait_for(server.wait_for_accepted(connection), WAIT)
            # every reconnect so far waited out a longer delay: none was reset
            assert source.backoff_attempts == connection - 1
            await server.publish(seq.begin_block(connection))
            await server.publish(bad)
            await log.wait_for(connection)
        await asyncio.wait_for(server.wait_for_accepted(7), WAIT)
        await server.publish(seq.begin_block(7))
        await server.publish(seq.end_block(7))
        await collector.take(6 + 2)
        assert source.backoff_attempts == 0
        await source.close()
    await asyncio.wait_for(collector.task, WAIT)
    assert source.stats.oversize_frames == 6


# --- (d) socket ownership ------------------------------------------------------------------


async def test_refuses_a_socket_owned_by_another_user(sock: str) -> None:
    async with FrameBroadcastServer(sock) as server:
        if os.geteuid() == 0:
            stranger = 4242
            os.chown(sock, stranger, stranger)
            source = SocketSource(sock)  # default: current user or root
        else:
            stranger = os.getuid()
            source = SocketSource(sock, expected_owners={os.getuid() + 1, 0})
        with pytest.raises(SocketOwnershipError) as caught:
            async for _ in source.frames():
                pytest.fail("a frame was read from a refused socket")
        assert caught.value.owner_uid == stranger
        assert stranger not in caught.value.expected_uids
        assert "refusing" in str(caught.value)
        assert server.stats.accepted == 0
        assert source.stats.connects == 0

        # The same socket is accepted when its owner is expected, or the check is off.
        for owners in ({stranger}, None):
            accepting = SocketSource(sock, expected_owners=owners)
            collector = Collector(accepting)
            await asyncio.wait_for(accepting.wait_for_state(ConnectionState.CONNECTED), WAIT)
            await accepting.close()
            await asyncio.wait_for(collector.task, WAIT)


@pytest.mark.parametrize("kind", ["regular file", "directory"])
async def test_refuses_a_path_that_is_not_a_socket(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "not-a-socket"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\x05\x00\x00\x00hello")
    source = SocketSource(path, expected_owners=None)
    with pytest.raises(NotASocketError) as caught:
        async for _ in source.frames():
            pytest.fail("read from a non-socket")
    assert caught.value.kind == kind


def test_owner_names_resolve_to_uids() -> None:
    assert resolve_owners(["root", "17", 5]) == frozenset({0, 17, 5})
    with pytest.raises(ValueError, match="unknown user"):
        resolve_owners(["no-such-user-here"])


# --- (e) backoff and cancellation ----------------------------------------------------------


class FixedRandom:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@settings(max_examples=300, deadline=None)
@given(
    initial=st.floats(1e-4, 10.0),
    spread=st.floats(1.0, 1e4),
    multiplier=st.floats(1.0, 10.0),
    jitter=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
    count=st.integers(1, 60),
)
def test_backoff_delays_stay_within_cap_and_jitter_bounds(
    *, initial: float, spread: float, multiplier: float, jitter: float, seed: int, count: int
) -> None:
    maximum = initial * spread
    backoff = Backoff(initial, maximum, multiplier, jitter, rng=random.Random(seed))
    base = initial
    for attempt in range(count):
        delay = backoff.next_delay()
        assert delay <= maximum
        assert (1 - jitter) * base * (1 - 1e-12) <= delay <= base
        assert backoff.attempts == attempt + 1
        base = min(maximum, base * multiplier)
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() <= initial


def test_backoff_extremes_of_the_random_draw() -> None:
    top = Backoff(1.0, 8.0, 2.0, 0.5, rng=FixedRandom(0.0))
    assert [top.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    bottom = Backoff(1.0, 8.0, 2.0, 0.5, rng=FixedRandom(1.0))
    assert [bottom.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


@pytest.mark.parametrize(
    ("initial", "maximum", "multiplier", "jitter"),
    [(0.0, 1.0, 2.0, 0.1), (2.0, 1.0, 2.0, 0.1), (1.0, 2.0, 0.5, 0.1), (1.0, 2.0, 2.0, 1.5)],
)
def test_backoff_rejects_nonsense(
    initial: float, maximum: float, multiplier: float, jitter: float
) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial, maximum, multiplier, jitter)


async def test_cancelling_a_backing_off_source_is_prompt(sock: str) -> None:
    source = SocketSource(sock, backoff=Backoff(initial=60.0, maximum=60.0))
    collector = Collector(source)
    await asyncio.wait_for(source.wait_for_state(ConnectionState.BACKING_OFF), WAIT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    collector.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await collector.task
    assert loop.time() - started < 1.0
    assert source.stats.connect_failures == 1


async def test_closing_a_backing_off_source_ends_iteration_promptly(sock: str) -> None:
    source = SocketSource(sock, backoff=Backoff(initial=60.0, maximum=60.0))
    collector = Collector(source)
    await asyncio.wait_for(source.wait_for_state(ConnectionState.BACKING_OFF), WAIT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await source.close()
    await asyncio.wait_for(collector.task, 1.0)
    assert loop.time() - started < 1.0
    assert source.state is ConnectionState.CLOSED
    assert collector.queue.empty()


async def test_connect_timeout_gives_up_on_a_missing_socket(sock: str) -> None:
    source = SocketSource(sock, backoff=fast_backoff(), connect_timeout=0.2)
    with pytest.raises(SocketUnavailableError) as caught:
        async for _ in source.frames():
            pytest.fail("no socket, no frames")
    assert caught.value.path == sock
    assert caught.value.waited >= 0.2
    assert source.stats.connect_failures >= 2


async def test_the_source_waits_for_a_producer_that_starts_late(sock: str) -> None:
    source = SocketSource(sock, backoff=fast_backoff())
    collector = Collector(source)
    await asyncio.wait_for(source.wait_for_state(ConnectionState.BACKING_OFF), WAIT)
    async with FrameBroadcastServer(sock) as server:
        await asyncio.wait_for(server.wait_for_clients(1), WAIT)
        await server.publish(StreamSequencer().begin_block(9))
        [(generation, _)] = await collector.take(1)
        await source.close()
    await asyncio.wait_for(collector.task, WAIT)
    assert generation == 1
    assert source.stats.connect_failures >= 1
    assert source.stats.disconnects == 0


async def test_a_source_is_iterated_once_at_a_time(sock: str) -> None:
    source = SocketSource(sock, backoff=fast_backoff())
    collector = Collector(source)
    await asyncio.wait_for(source.wait_for_state(ConnectionState.BACKING_OFF), WAIT)
    with pytest.raises(RuntimeError, match="already"):
        async for _ in source.frames():
            pass
    await source.close()
    await asyncio.wait_for(collector.task, WAIT)
