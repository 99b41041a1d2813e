"""FrameSplitter: frames before an oversize length prefix are delivered, then it fails."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge.errors import FrameTooLargeError, TruncatedStreamError
from exex_bridge.framing import FrameSplitter, frame

CAP = 64


@given(
    st.lists(st.binary(max_size=CAP), max_size=8),
    st.integers(min_value=CAP + 1, max_value=2**32 - 1),
    st.integers(min_value=1, max_value=97),
)
def test_frames_before_an_oversize_prefix_are_delivered(
    payloads: list[bytes], bad_length: int, chunk_size: int
) -> None:
    stream = b"".join(frame(p) for p in payloads) + struct.pack("<I", bad_length) + b"junk"
    splitter = FrameSplitter(max_frame=CAP)
    received: list[bytes] = []
    with pytest.raises(FrameTooLargeError) as raised:
        for start in range(0, len(stream), chunk_size):
            received += splitter.feed(stream[start : start + chunk_size])
        received += splitter.feed(b"")
    assert received == payloads
    assert raised.value.length == bad_length
    assert splitter.error is raised.value
    assert splitter.buffered <= len(stream) - sum(4 + len(p) for p in payloads)


def test_error_is_sticky() -> None:
    splitter = FrameSplitter(max_frame=CAP)
    assert splitter.feed(frame(b"ok") + struct.pack("<I", CAP + 1)) == [b"ok"]
    for _ in range(2):
        with pytest.raises(FrameTooLargeError):
            splitter.feed(frame(b"later"))


def test_finish_reports_a_partial_frame() -> None:
    splitter = FrameSplitter(max_frame=CAP)
    assert splitter.feed(frame(b"abc")[:-1]) == []
    with pytest.raises(TruncatedStreamError) as raised:
        splitter.finish()
    assert (raised.value.needed, raised.value.available) == (7, 6)
