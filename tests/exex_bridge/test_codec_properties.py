"""Properties of the codec and the framing over generated messages and damaged bytes."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exex_bridge import codec_fast
from exex_bridge import messages as m
from exex_bridge.codec import (
    decode_fast,
    decode_frames,
    decode_message,
    decode_message_generic,
    encode_frame,
    encode_message,
)
from exex_bridge.errors import CodecError, FrameTooLargeError, TruncatedStreamError
from exex_bridge.framing import FrameSplitter, iter_frames
from tests.exex_bridge import strategies as s

FAST = settings(max_examples=40, deadline=None)
THOROUGH = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Outcome = tuple[Any, ...]


def outcome(decode: Any, wire: bytes | memoryview) -> Outcome:
    try:
        return ("ok", decode(wire))
    except CodecError as e:
        return ("error", e.offset, e.path, e.stream_seq, e.reason)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", m.POOL_UPDATE_VARIANTS, ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_every_pool_update_variant_round_trips(cls: type[Any], data: st.DataObject) -> None:
    msg = data.draw(s.pool_updates(s.PAYLOAD_STRATEGIES[cls]))
    wire = encode_message(msg)
    assert decode_message(wire) == msg
    assert decode_message_generic(wire) == msg


@pytest.mark.parametrize("cls", m.CONTROL_VARIANTS, ids=lambda c: c.__name__)
@FAST
@given(data=st.data())
def test_every_control_message_round_trips(cls: type[Any], data: st.DataObject) -> None:
    msg = data.draw(s.CONTROL_STRATEGIES[cls])
    wire = encode_message(msg)
    assert decode_message(wire) == msg
    assert decode_message(memoryview(wire)) == msg
    assert decode_message_generic(wire) == msg


@settings(max_examples=200, deadline=None)
@given(s.hot_messages())
def test_hot_frames_take_the_fast_path_and_agree(msg: m.ControlMessage) -> None:
    wire = encode_message(msg)
    assert decode_fast(wire) == msg  # not None: the precompiled layout handled it
    assert decode_message_generic(wire) == msg


# --- damaged frames ------------------------------------------------------------------------

_INTERESTING_BYTES = st.sampled_from([0, 1, 2, 0x13, 0x14, 0x15, 0x1F, 0x20, 0x21, 0x80, 0xFF])
_INTERESTING_WORDS = st.integers(0, 24) | st.sampled_from([0xFFFFFFFF, 1 << 31])
# Where the fast layouts keep tags, lengths and bools (address and pool-id PoolUpdates,
# BeginBlock): edits there must send the frame to the reference decoder.
_LAYOUT_OFFSETS = st.sampled_from([0, 12, 16, 36, 44, 48, 52, 84, 85, 88, 89, 93])


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid frame (hot variants weighted up) with one to three edits."""
    msg = draw(st.one_of(s.hot_messages(), s.control_messages()))
    wire = bytearray(encode_message(msg))
    for _ in range(draw(st.integers(1, 3))):
        last = max(len(wire) - 1, 0)
        pos = min(draw(_LAYOUT_OFFSETS | st.integers(0, last)), last)
        kind = draw(st.sampled_from(["byte", "word", "insert", "delete", "cut"]))
        if kind == "byte" and wire:
            wire[pos] = draw(_INTERESTING_BYTES | s.u8)
        elif kind == "word":
            wire[pos : pos + 4] = draw(_INTERESTING_WORDS).to_bytes(4, "little")
        elif kind == "insert":
            wire[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del wire[pos : pos + draw(st.integers(1, 8))]
        else:
            del wire[pos:]
    return bytes(wire)


@THOROUGH
@given(damaged())
def test_fast_and_generic_decoders_agree_on_damaged_frames(wire: bytes) -> None:
    fast_only = decode_fast(wire)
    generic = outcome(decode_message_generic, wire)
    assert outcome(decode_message, wire) == generic
    assert outcome(decode_message, memoryview(wire)) == generic
    if fast_only is not None:
        assert generic == ("ok", fast_only)


_HOT_KINDS = {
    **{cls.__name__: s.pool_updates(s.PAYLOAD_STRATEGIES[cls]) for cls in s.HOT_PAYLOADS},
    "BeginBlock": s.CONTROL_STRATEGIES[m.BeginBlock],
    "EndBlock": s.CONTROL_STRATEGIES[m.EndBlock],
}


@pytest.mark.parametrize("kind", sorted(_HOT_KINDS))
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_every_single_byte_edit_of_a_hot_frame_decodes_alike(
    kind: str, data: st.DataObject
) -> None:
    wire = encode_message(data.draw(_HOT_KINDS[kind]))
    for pos, old in enumerate(wire):
        for new in {0, 1, 2, 0x14, 0x20, 0xFF, old ^ 1} - {old}:
            edited = wire[:pos] + bytes([new]) + wire[pos + 1 :]
            assert outcome(decode_message, edited) == outcome(decode_message_generic, edited)


@THOROUGH
@given(damaged())
def test_every_accepted_frame_is_canonical(wire: bytes) -> None:
    # The decoder admits exactly one byte string per message: what it accepts re-encodes
    # to the same bytes (no lax tags, lengths, bools or I256 forms slip through).
    try:
        msg = decode_message(wire)
    except CodecError:
        return
    assert encode_message(msg) == wire


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=256)
    | st.tuples(st.integers(0, 9), st.binary(max_size=200)).map(
        lambda t: t[0].to_bytes(4, "little") + t[1]
    )
)
def test_random_bytes_raise_only_codec_errors(wire: bytes) -> None:
    generic = outcome(decode_message_generic, wire)
    assert outcome(decode_message, wire) == generic


@FAST
@given(s.control_messages(include_whitelist=False), st.binary(min_size=1, max_size=16))
def test_truncated_and_extended_frames_are_errors(msg: m.ControlMessage, extra: bytes) -> None:
    wire = encode_message(msg)
    for cut in range(len(wire)):
        with pytest.raises(CodecError):
            decode_message(wire[:cut])
    with pytest.raises(CodecError, match="left over") as info:
        decode_message(wire + extra)
    assert info.value.offset == len(wire)


# --- framing -------------------------------------------------------------------------------


@FAST
@given(st.lists(s.control_messages(), max_size=20))
def test_iter_frames_yields_every_concatenated_frame(msgs: list[m.ControlMessage]) -> None:
    stream = b"".join(encode_frame(msg) for msg in msgs)
    payloads = list(iter_frames(stream))
    assert [bytes(p) for p in payloads] == [encode_message(msg) for msg in msgs]
    assert [decode_message(p) for p in payloads] == msgs


@FAST
@given(st.lists(s.control_messages(), min_size=1, max_size=20), st.data())
def test_frame_splitter_reassembles_any_chunking(
    msgs: list[m.ControlMessage], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(msg) for msg in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    splitter = FrameSplitter()
    got: list[bytes] = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += splitter.feed(stream[start:stop])
    splitter.finish()
    assert [decode_message(p) for p in got] == msgs
    assert splitter.offset == len(stream)
    assert splitter.buffered == 0


@FAST
@given(st.lists(s.hot_messages(), min_size=1, max_size=5), st.data())
def test_stream_cut_inside_a_frame_is_truncated(
    msgs: list[m.ControlMessage], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(msg) for msg in msgs)
    last = len(encode_frame(msgs[-1]))
    cut = data.draw(st.integers(len(stream) - last + 1, len(stream) - 1))
    splitter = FrameSplitter()
    assert len(splitter.feed(stream[:cut])) == len(msgs) - 1
    with pytest.raises(TruncatedStreamError):
        splitter.finish()
    with pytest.raises(TruncatedStreamError):
        list(iter_frames(stream[:cut]))


@FAST
@given(
    cap=st.integers(16, 1 << 24),
    excess=st.integers(1, 1 << 20),
    body=st.binary(max_size=64),
    before=st.lists(s.hot_messages(), max_size=3),
)
def test_oversized_length_is_rejected_before_its_body_arrives(
    cap: int, excess: int, body: bytes, before: list[m.ControlMessage]
) -> None:
    length = min(cap + excess, 0xFFFFFFFF)
    prefix = length.to_bytes(4, "little")
    good = b"".join(encode_frame(msg) for msg in before if len(encode_message(msg)) <= cap)
    splitter = FrameSplitter(max_frame=cap)
    splitter.feed(good)
    with pytest.raises(FrameTooLargeError) as info:
        splitter.feed(prefix)  # the prefix alone is enough: no body is awaited
    assert (info.value.length, info.value.cap) == (length, cap)
    assert splitter.buffered == 4
    assert splitter.offset == len(good)

    fresh = FrameSplitter(max_frame=cap)
    with pytest.raises(FrameTooLargeError):
        fresh.feed(prefix + body)
    assert fresh.buffered <= 4 + len(body)  # only what was fed, never `length` bytes
    with pytest.raises(FrameTooLargeError):
        list(iter_frames(good + prefix + body, max_frame=cap))


def _frame_outcome(item: m.ControlMessage | CodecError) -> Outcome:
    if isinstance(item, CodecError):
        return ("error", item.offset, item.path, item.stream_seq, item.reason)
    return ("ok", item)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(damaged() | s.control_messages().map(encode_message), max_size=12), st.data())
def test_decode_frames_matches_per_frame_decoding(
    payloads: list[bytes], data: st.DataObject
) -> None:
    whole = b"".join(len(p).to_bytes(4, "little") + p for p in payloads)
    cut = data.draw(st.integers(0, 3))  # a partial frame (or partial prefix) at the end
    tail = b"\xff\x00\x00\x00\x01\x02"[:cut] if cut else b""
    stream = b"junk" + whole + tail
    buf = bytearray(stream)
    items, end = decode_frames(buf, start=4)
    assert end == 4 + len(whole)
    assert [_frame_outcome(i) for i in items] == [outcome(decode_message, p) for p in payloads]
    del buf[:end]  # what a socket reader does next; no view of `buf` may survive the call
    assert buf == tail


@FAST
@given(st.lists(s.hot_messages(), min_size=1, max_size=5), st.integers(17, 1 << 20))
def test_decode_frames_stops_in_front_of_an_oversized_length(
    msgs: list[m.ControlMessage], excess: int
) -> None:
    good = b"".join(encode_frame(msg) for msg in msgs)
    cap = max(len(encode_message(msg)) for msg in msgs)
    stream = good + (cap + excess).to_bytes(4, "little") + b"body"
    items, end = decode_frames(stream, max_frame=cap)
    assert items == msgs
    assert end == len(good)
    with pytest.raises(FrameTooLargeError) as info:
        decode_frames(stream, start=end, max_frame=cap)
    assert info.value.length == cap + excess


def test_decode_frames_leaves_a_bytearray_resizable_after_errors() -> None:
    bad = bytes.fromhex("01000000" + "09")  # a 1-byte frame: too short for any tag
    buf = bytearray(encode_frame(m.Ping()) + bad)
    items, end = decode_frames(buf)
    assert items[0] == m.Ping()
    assert isinstance(items[1], CodecError)
    del buf[:end]  # raises BufferError if a memoryview of `buf` is still alive
    assert buf == bytearray()


def test_pool_ids_are_interned_and_the_cache_is_bounded() -> None:
    a = decode_message(encode_message(_v2_sync(bytes(19) + b"\x01")))
    b = decode_message(encode_message(_v2_sync(bytes(19) + b"\x01")))
    assert isinstance(a, m.PoolUpdate) and isinstance(b, m.PoolUpdate)
    assert a.event.pool_id is b.event.pool_id
    for i in range(codec_fast._INTERN_MAX + 10):
        codec_fast._pool_address(i.to_bytes(20, "big"))
    assert len(codec_fast._ADDRESS_IDS) <= codec_fast._INTERN_MAX


def _v2_sync(address: bytes) -> m.PoolUpdate:
    return m.PoolUpdate(
        stream_seq=1,
        event=m.PoolUpdateMessage(
            pool_id=m.PoolAddress(value=address),
            protocol=m.Protocol.UNISWAP_V2,
            update_type=m.UpdateType.SWAP,
            block_number=1,
            block_timestamp=1,
            tx_index=0,
            log_index=0,
            is_revert=False,
            update=m.V2Sync(reserve0=1, reserve1=2),
        ),
    )


def test_length_exactly_at_the_cap_is_accepted() -> None:
    payload = encode_message(m.EndBlock(stream_seq=1, block_number=2, num_updates=3))
    splitter = FrameSplitter(max_frame=len(payload))
    assert splitter.feed(encode_frame(m.EndBlock(stream_seq=1, block_number=2, num_updates=3))) == [
        payload
    ]
