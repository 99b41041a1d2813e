"""Recording files: header, verbatim frames, raw dumps, damaged files."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exex_bridge.codec import encode_frame
from exex_bridge.errors import FrameTooLargeError, RecordingFormatError, TruncatedStreamError
from exex_bridge.framing import frame
from exex_bridge.producers.broadcast import StreamSequencer
from exex_bridge.recording import (
    FORMAT_VERSION,
    MAGIC,
    RecordingMetadata,
    RecordingWriter,
    open_recording,
)
from tests.exex_bridge.socket_streams import committed_blocks

META = RecordingMetadata(
    created_at="2024-05-01T12:00:00.000+00:00",
    source="/tmp/reth_exex_pool_updates.sock",
    arena_version="0.1.0",
    notes={"command": "test"},
)


def stream_payloads() -> list[bytes]:
    return [encode_frame(msg)[4:] for msg in committed_blocks(StreamSequencer(), 10, 4, 3)]


def write_recording(path: Path, payloads: list[bytes]) -> None:
    with RecordingWriter(path, META) as writer:
        writer.write_frames(payloads)


def test_round_trip_keeps_metadata_and_frames(tmp_path: Path) -> None:
    payloads = stream_payloads()
    path = tmp_path / "a.rec"
    with RecordingWriter(path, META) as writer:
        for payload in payloads:
            writer.write_frame(payload)
        writer.sync()
        assert writer.frames == len(payloads)
        assert writer.bytes_written == path.stat().st_size
    reader = open_recording(path)
    assert reader.format == "recording"
    assert reader.metadata == META
    assert list(reader.frames()) == payloads
    assert list(reader.frames()) == payloads  # a reader can be iterated again


def test_file_is_header_then_the_socket_bytes_verbatim(tmp_path: Path) -> None:
    payloads = stream_payloads()
    path = tmp_path / "a.rec"
    write_recording(path, payloads)
    data = path.read_bytes()
    meta = msgspec.json.encode(META)
    header = MAGIC + struct.pack("<HI", FORMAT_VERSION, len(meta)) + meta
    assert data == header + b"".join(frame(p) for p in payloads)


def test_new_metadata_records_time_source_and_version() -> None:
    meta = RecordingMetadata.new("/run/exex.sock", {"host": "node-1"})
    assert meta.source == "/run/exex.sock"
    assert meta.created_at.endswith("+00:00")
    assert meta.arena_version == "0.1.0"
    assert meta.notes == {"host": "node-1"}


def test_a_headerless_file_is_read_as_a_raw_dump(tmp_path: Path) -> None:
    payloads = stream_payloads()
    path = tmp_path / "socket.bin"
    path.write_bytes(b"".join(frame(p) for p in payloads))
    reader = open_recording(path)
    assert reader.format == "raw"
    assert reader.metadata is None
    assert list(reader.frames()) == payloads


def test_an_empty_file_is_an_empty_raw_dump(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    reader = open_recording(path)
    assert (reader.format, list(reader.frames())) == ("raw", [])


def test_a_recording_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "none.rec"
    write_recording(path, [])
    reader = open_recording(path)
    assert (reader.format, reader.metadata, list(reader.frames())) == ("recording", META, [])


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 20])
@pytest.mark.parametrize("headed", [True, False])
def test_a_truncated_last_frame_raises_with_its_offset(
    tmp_path: Path, cut: int, headed: bool
) -> None:
    payloads = stream_payloads()
    path = tmp_path / "cut.rec"
    if headed:
        write_recording(path, payloads)
    else:
        path.write_bytes(b"".join(frame(p) for p in payloads))
    data = path.read_bytes()
    last_start = len(data) - len(frame(payloads[-1]))
    path.write_bytes(data[: len(data) - cut])
    reader = open_recording(path)
    got: list[bytes] = []
    with pytest.raises(TruncatedStreamError) as caught:
        got.extend(reader.frames())
    assert got == payloads[:-1]
    assert caught.value.offset == last_start
    assert caught.value.available == len(frame(payloads[-1])) - cut


def test_a_truncated_tail_can_be_tolerated_and_is_counted(tmp_path: Path) -> None:
    payloads = stream_payloads()
    path = tmp_path / "cut.rec"
    write_recording(path, payloads)
    path.write_bytes(path.read_bytes()[:-7])
    reader = open_recording(path, tolerate_truncated=True)
    assert list(reader.frames()) == payloads[:-1]
    assert reader.truncated_bytes == len(frame(payloads[-1])) - 7


def test_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.rec"
    meta = msgspec.json.encode(META)
    path.write_bytes(MAGIC + struct.pack("<HI", 2, len(meta)) + meta + frame(b"x"))
    with pytest.raises(RecordingFormatError, match="version 2"):
        open_recording(path)


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x01", "header cut short"),
        (struct.pack("<HI", 1, 50) + b"{}", "metadata cut short"),
        (struct.pack("<HI", 1, 5) + b"nope!", "unreadable metadata"),
        (struct.pack("<HI", 1, 2) + b"{}", "unreadable metadata"),  # required keys missing
        (struct.pack("<HI", 1, 1 << 30), "implausible"),
    ],
)
def test_a_damaged_header_is_refused(tmp_path: Path, tail: bytes, reason: str) -> None:
    path = tmp_path / "bad.rec"
    path.write_bytes(MAGIC + tail)
    with pytest.raises(RecordingFormatError, match=reason):
        open_recording(path)


def test_unknown_metadata_keys_from_newer_writers_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "newer.rec"
    doc = msgspec.json.encode({**msgspec.structs.asdict(META), "chain_id": 1})
    path.write_bytes(MAGIC + struct.pack("<HI", 1, len(doc)) + doc + frame(b"abc"))
    reader = open_recording(path)
    assert reader.metadata == META
    assert list(reader.frames()) == [b"abc"]


def test_an_oversize_length_in_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    path.write_bytes(frame(b"ok") + struct.pack("<I", 1 << 30) + b"\x00" * 8)
    with pytest.raises(FrameTooLargeError):
        list(open_recording(path, max_frame=1 << 20).frames())


def test_the_writer_refuses_an_existing_file_unless_told_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "exists.rec"
    path.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        RecordingWriter(path, META)
    assert path.read_bytes() == b"old"
    writer = RecordingWriter(path, META, overwrite=True)
    writer.write_frame(b"new")
    writer.close()
    assert list(open_recording(path).frames()) == [b"new"]


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=600), max_size=40),
    headed=st.booleans(),
    note=st.text(max_size=30),
)
def test_any_frame_sequence_round_trips_byte_exactly(
    payloads: list[bytes], headed: bool, note: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.bin"
        if headed:
            meta = RecordingMetadata.new("src", {"note": note})
            with RecordingWriter(path, meta) as writer:
                writer.write_frames(payloads)
        else:
            meta = None
            path.write_bytes(b"".join(frame(p) for p in payloads))
        reader = open_recording(path)
        assert reader.format == ("recording" if headed else "raw")
        assert reader.metadata == meta
        assert list(reader.frames()) == payloads
