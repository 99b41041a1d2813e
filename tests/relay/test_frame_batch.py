"""Properties of the frame batches: a batch body is the socket's bytes, splits back into
its frames, and however the relay cuts the stream the frames seen downstream are the
frames the producer wrote (unit tests of one module each, without servers: the relay's
cutting runs against a recording publisher)."""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.frame_batch import BatchFormatError, encode_batch, split_batch
from exex_bridge.frame_relay import FrameRelay, RelayOptions
from exex_bridge.framing import frame
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import BatchId, Retention

payloads = st.lists(st.binary(max_size=300), max_size=40)


@given(payloads)
def test_a_batch_body_is_the_socket_bytes_and_splits_back(frames: list[bytes]) -> None:
    body = encode_batch(frames)
    assert body == b"".join(frame(p) for p in frames)
    assert split_batch(body) == frames


@given(payloads, st.data())
def test_cutting_the_frames_anywhere_never_changes_the_frames_seen(
    frames: list[bytes], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(0, len(frames)))))
    bounds = [0, *cuts, len(frames)]
    bodies = [encode_batch(frames[a:b]) for a, b in itertools.pairwise(bounds)]
    assert [p for body in bodies for p in split_batch(body)] == frames
    assert b"".join(bodies) == encode_batch(frames)


@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=20), st.data())
def test_a_cut_body_gives_exactly_its_whole_frames(
    frames: list[bytes], data: st.DataObject
) -> None:
    body = encode_batch(frames)
    end = data.draw(st.integers(0, len(body) - 1))
    cut = body[:end]
    ends = list(itertools.accumulate(4 + len(p) for p in frames))  # where each frame ends
    whole = sum(1 for e in ends if e <= end)
    if end == 0 or end in ends:
        assert split_batch(cut) == frames[:whole]
        return
    with pytest.raises(BatchFormatError) as caught:
        split_batch(cut)
    assert caught.value.frames == frames[:whole]


# -- the relay's cutting ------------------------------------------------------------------
_TAG_SEQ = struct.Struct("<IQ")
BEGIN, UPDATE, END, PING, REORG_START, REORG_COMPLETE = 1, 2, 3, 4, 6, 8


@dataclass
class _Source:
    payloads: list[bytes]

    async def frames(self) -> AsyncGenerator[bytes, None]:
        for payload in self.payloads:
            yield payload
            if len(payload) % 7 == 0:
                await asyncio.sleep(0)  # the socket's reads end here and there

    async def close(self) -> None:
        return None


@dataclass
class _Recorder:
    """Records what the relay hands on (a stand-in for the JetStream publisher)."""

    batches: list[tuple[str, bytes, int, bool, bool]] = field(default_factory=list)
    repeats: int = 0
    put_done: asyncio.Event = field(default_factory=asyncio.Event)  # set at every batch

    async def put(
        self, msg_id: str, body: bytes, frames: int, *, restart: bool, settles: bool
    ) -> bool:
        self.batches.append((msg_id, body, frames, restart, settles))
        self.put_done.set()
        return True

    def skip_repeat(self) -> None:
        self.repeats += 1


@st.composite
def producer_streams(draw: st.DrawFn) -> list[bytes]:
    """Blocks, reorg envelopes, pings, producer restarts and repeated frames."""
    out: list[bytes] = []
    seq = 0
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["block", "block", "reorg", "restart", "repeat", "ping"]))
        if kind == "restart":
            seq = draw(st.integers(0, max(0, seq - 1)))
        if kind == "repeat" and out:
            out.append(out[-1])
            continue
        if kind == "ping":
            out.append(struct.pack("<I", PING))
            continue
        tags = [BEGIN, *[UPDATE] * draw(st.integers(0, 6)), END]
        if kind == "reorg":
            tags = [REORG_START, *tags, *tags, REORG_COMPLETE]
        for tag in tags:
            seq += 1
            unique = struct.pack("<I", len(out))  # only a repeat is byte-identical
            out.append(_TAG_SEQ.pack(tag, seq) + unique + draw(st.binary(max_size=24)))
    return out


def _relay_over(stream: list[bytes], batch_frames: int, batch_bytes: int) -> _Recorder:
    options = RelayOptions(
        "t",
        Retention(1.0, 1, 1.0),
        1_000,
        batch_frames=batch_frames,
        batch_bytes=batch_bytes,
        linger=60.0,  # never within a test: the cuts are the deterministic ones
    )
    relay = FrameRelay(_Source(stream), None, options, RelayMetrics())  # type: ignore[arg-type]
    recorder = _Recorder()
    relay.publisher = recorder  # type: ignore[assignment]
    asyncio.run(relay.run())
    return recorder


def _settles(payload: bytes, envelope: bool) -> tuple[bool, bool]:
    """(settles, inside an envelope afterwards)"""
    if len(payload) < 12:
        return False, envelope
    tag = _TAG_SEQ.unpack_from(payload)[0]
    if tag == REORG_START:
        return False, True
    if tag == REORG_COMPLETE:
        return True, False
    return tag == END and not envelope, envelope


@given(producer_streams(), st.integers(1, 50), st.integers(1, 400))
def test_batches_carry_every_frame_once_in_order_cut_where_promised(
    stream: list[bytes], batch_frames: int, batch_bytes: int
) -> None:
    recorder = _relay_over(stream, batch_frames, batch_bytes)
    repeats = sum(1 for a, b in itertools.pairwise(stream) if a == b and len(a) >= 12)
    seen = [p for _, body, _, _, _ in recorder.batches for p in split_batch(body)]
    # Every frame but the producer's byte-identical repeats, in order, byte for byte.
    assert recorder.repeats == repeats
    assert len(seen) == len(stream) - repeats
    deduplicated = [p for i, p in enumerate(stream) if i == 0 or len(p) < 12 or p != stream[i - 1]]
    assert seen == deduplicated
    ids = [BatchId.parse(msg_id) for msg_id, _, _, _, _ in recorder.batches]
    assert None not in ids
    assert len(set(ids)) == len(ids)  # distinct batches, distinct ids
    envelope = False
    for (_, body, frames, restart, _), batch_id in zip(recorder.batches, ids, strict=True):
        parts = split_batch(body)
        assert frames == len(parts) <= batch_frames
        assert len(body) <= batch_bytes or len(parts) == 1  # a bigger frame travels alone
        assert batch_id is not None and batch_id.first.epoch == batch_id.last.epoch
        if restart:  # the frame that restarted the producer begins its batch
            assert batch_id.first.seq == _TAG_SEQ.unpack_from(parts[0])[1]
        for i, payload in enumerate(parts):
            settles, envelope = _settles(payload, envelope)
            if settles:
                assert i == len(parts) - 1, "a settled block ends its batch"


@given(producer_streams(), st.integers(1, 50))
def test_the_epoch_changes_only_at_the_start_of_a_batch_marked_restart(
    stream: list[bytes], batch_frames: int
) -> None:
    recorder = _relay_over(stream, batch_frames, 1 << 20)
    epoch = 0
    for msg_id, _, _, restart, _ in recorder.batches:
        batch_id = BatchId.parse(msg_id)
        assert batch_id is not None
        assert restart == (batch_id.first.epoch != epoch)
        epoch = batch_id.last.epoch


@dataclass
class _PausingSource:
    """Yields `parts` one after the other, waiting for `go` before each later part (a
    producer that stops inside a block)."""

    parts: list[list[bytes]]
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def frames(self) -> AsyncGenerator[bytes, None]:
        for n, part in enumerate(self.parts):
            if n:
                await self.go.wait()
                self.go.clear()
            for payload in part:
                yield payload

    async def close(self) -> None:
        return None


async def test_an_open_batch_is_cut_after_the_linger_each_time_the_producer_pauses() -> None:
    """The relay is idle until a batch opens; a batch left open by a producer that stops
    inside a block is cut once its first frame has waited the linger, every time."""
    parts = [
        [_TAG_SEQ.pack(BEGIN, 1), _TAG_SEQ.pack(UPDATE, 2)],
        [_TAG_SEQ.pack(UPDATE, 3), _TAG_SEQ.pack(END, 4), _TAG_SEQ.pack(BEGIN, 5)],
        [_TAG_SEQ.pack(END, 6)],
    ]
    options = RelayOptions("t", Retention(1.0, 1, 1.0), 1_000, batch_frames=100, linger=0.05)
    source = _PausingSource(parts)
    relay = FrameRelay(source, None, options, RelayMetrics())  # type: ignore[arg-type]
    recorder = _Recorder()
    relay.publisher = recorder  # type: ignore[assignment]
    running = asyncio.create_task(relay.run())

    async def batches(n: int) -> list[list[bytes]]:
        async with asyncio.timeout(10):
            while len(recorder.batches) < n:  # woken by each batch handed on
                recorder.put_done.clear()
                await recorder.put_done.wait()
        return [split_batch(body) for _, body, _, _, _ in recorder.batches]

    assert await batches(1) == [parts[0]]  # cut by the linger: the producer paused
    source.go.set()
    # the block's end cuts at END; the next block's BEGIN waits the linger again
    assert await batches(3) == [parts[0], parts[1][:2], parts[1][2:]]
    source.go.set()
    await running
    assert [split_batch(body) for _, body, _, _, _ in recorder.batches] == [
        parts[0],
        parts[1][:2],
        parts[1][2:],
        parts[2],
    ]
