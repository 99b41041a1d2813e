"""Properties of the relay's message ids and producer epochs (unit tests of one module
each, without servers)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.frame_relay import FrameRelay, RelayOptions
from exex_bridge.relay_metrics import RelayMetrics
from exex_bridge.relay_stream import BatchId, MessageId, Retention, frames_subject, stream_name
from exex_bridge.socket_source import SocketSource

_BEGIN = 1  # a sequenced tag
_PING = 4  # an unsequenced one


@given(
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=2**16),
)
def test_a_message_id_reads_back_as_itself(epoch: int, seq: int, extra: int) -> None:
    msg_id = MessageId(epoch, seq, extra)
    assert MessageId.parse(str(msg_id)) == msg_id


@given(
    st.integers(min_value=0, max_value=2**32),
    st.tuples(st.integers(min_value=0, max_value=2**64 - 1), st.integers(0, 2**16)),
    st.tuples(st.integers(min_value=0, max_value=2**64 - 1), st.integers(0, 2**16)),
)
def test_a_batch_id_reads_back_as_itself(
    epoch: int, first: tuple[int, int], last: tuple[int, int]
) -> None:
    batch = BatchId(MessageId(epoch, *first), MessageId(epoch, *last))
    assert BatchId.parse(str(batch)) == batch


@given(st.integers(0, 2**32), st.integers(0, 2**64 - 1), st.integers(0, 2**16))
def test_a_single_frame_id_reads_as_a_batch_of_that_frame(epoch: int, seq: int, n: int) -> None:
    position = MessageId(epoch, seq, n)
    assert BatchId.parse(str(position)) == BatchId(position, position)


@given(st.text(max_size=12))
def test_text_that_is_no_message_id_is_none_or_reads_back_exactly(text: str) -> None:
    parsed = MessageId.parse(text)
    assert parsed is None or MessageId.parse(str(parsed)) == parsed


@given(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True))
def test_every_valid_chain_names_one_stream_and_one_subject_token(chain: str) -> None:
    assert frames_subject(chain).split(".") == ["exex", chain, "frames"]
    assert stream_name(chain).startswith("EXEX_")
    assert "." not in stream_name(chain) and " " not in stream_name(chain)


def _relay() -> FrameRelay:
    options = RelayOptions("t", Retention(1.0, 1, 1.0), 1)
    return FrameRelay(SocketSource("/nonexistent"), None, options, RelayMetrics())  # type: ignore[arg-type]


def _frame(tag: int, seq: int, body: int = 0) -> bytes:
    return struct.pack("<IQ", tag, seq) + body.to_bytes(4, "little")


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_the_epoch_rises_exactly_at_each_decrease_that_is_no_repeat(
    seqs: list[int],
) -> None:
    relay = _relay()
    ids: set[str] = set()
    expected_epoch, last = 0, None
    for i, seq in enumerate(seqs):
        identified = relay._identify(_frame(_BEGIN, seq, body=i))  # bodies differ: no repeats
        if last is not None and seq <= last:
            expected_epoch += 1
        assert identified.restart == (last is not None and seq <= last)
        position = str(relay.position)
        assert position == f"{expected_epoch}:{seq}"
        assert position not in ids  # distinct frames never share a position
        ids.add(position)
        last = seq
    assert (
        relay.metrics.registry.get_sample_value("arena_relay_producer_restarts_total")
        == expected_epoch
    )


@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=30))
def test_a_byte_identical_repeat_is_skipped_and_never_starts_an_epoch(
    repeats: list[int],
) -> None:
    relay = _relay()
    for seq, n in enumerate(repeats, start=1):
        relay._identify(_frame(_BEGIN, seq))
        first = relay.position
        for _ in range(n):
            again = relay._identify(_frame(_BEGIN, seq))
            assert again.repeat and not again.restart
            assert relay.position == first  # a repeat does not move the position
        relay._identify(_frame(_PING, 0))
        assert str(relay.position) == f"0:{seq}.1"
    assert relay.epoch == 0
