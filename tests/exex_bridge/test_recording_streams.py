"""Recordings and raw dumps read from pipes, FIFOs and devices: opened once, read as a
stream, with the same frames, truncation and oversize rules as a regular file."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exex_bridge.errors import FrameTooLargeError, RecordingFormatError, TruncatedStreamError
from exex_bridge.framing import frame
from exex_bridge.recording import RecordingReader, open_recording
from tests.exex_bridge.test_recording import META, stream_payloads, write_recording


class Feeder:
    """Writes `data` into a pipe or FIFO from a thread (a pipe holds only 64 KiB)."""

    def __init__(self, open_writer: object, data: bytes) -> None:
        self.data = data
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(open_writer,), daemon=True)
        self.thread.start()

    def _run(self, open_writer: object) -> None:
        try:
            fd = open_writer() if callable(open_writer) else open_writer
            assert isinstance(fd, int)
            with os.fdopen(fd, "wb") as out:
                out.write(self.data)
        except BrokenPipeError:
            pass  # the reader stopped early: what the test asked for
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@contextlib.contextmanager
def via_pipe(data: bytes) -> Iterator[tuple[str, Feeder]]:
    read_fd, write_fd = os.pipe()
    feeder = Feeder(write_fd, data)
    try:
        yield f"/proc/self/fd/{read_fd}", feeder
    finally:
        os.close(read_fd)


def via_fifo(tmp_path: Path, data: bytes) -> tuple[str, Feeder]:
    fifo = tmp_path / "stream.fifo"
    os.mkfifo(fifo)
    return str(fifo), Feeder(lambda: os.open(fifo, os.O_WRONLY), data)


def recording_bytes(tmp_path: Path, payloads: list[bytes]) -> bytes:
    path = tmp_path / "source.arec"
    write_recording(path, payloads)
    return path.read_bytes()


def read_all(reader: RecordingReader) -> list[bytes]:
    with reader:
        return list(reader.frames())


def test_a_recording_through_a_pipe_yields_every_frame(tmp_path: Path) -> None:
    payloads = stream_payloads()
    data = recording_bytes(tmp_path, payloads)
    with via_pipe(data) as (path, feeder):
        reader = open_recording(path)
        assert (reader.is_stream, reader.size, reader.format) == (True, None, "recording")
        assert reader.metadata == META
        assert read_all(reader) == payloads
        assert reader.position == len(data)
        feeder.join()


def test_a_raw_dump_through_a_fifo_is_opened_once(tmp_path: Path) -> None:
    """A FIFO opened a second time would wait for another writer forever."""
    payloads = stream_payloads()
    path, feeder = via_fifo(tmp_path, b"".join(frame(p) for p in payloads))
    reader = open_recording(path)
    assert reader.format == "raw"
    assert read_all(reader) == payloads
    feeder.join()


def test_a_stream_is_read_once(tmp_path: Path) -> None:
    payloads = stream_payloads()
    with via_pipe(recording_bytes(tmp_path, payloads)) as (path, feeder):
        reader = open_recording(path)
        assert list(reader.frames()) == payloads
        with pytest.raises(RecordingFormatError, match="only once"):
            list(reader.frames())
        reader.close()
        feeder.join()


def test_dev_null_is_an_empty_stream() -> None:
    reader = open_recording("/dev/null")
    assert (reader.is_stream, reader.format, read_all(reader)) == (True, "raw", [])


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=1, max_value=60))
def test_a_stream_cut_inside_a_frame(cut: int) -> None:
    payloads = stream_payloads()
    whole = b"".join(frame(p) for p in payloads)
    data = whole[:-cut]
    ends = list(itertools.accumulate(len(p) + 4 for p in payloads))
    complete = [p for p, end in zip(payloads, ends, strict=True) if end <= len(data)]
    on_a_boundary = len(data) in ends
    with via_pipe(data) as (path, feeder):
        if on_a_boundary:
            assert read_all(open_recording(path)) == complete
        else:
            with pytest.raises(TruncatedStreamError):
                read_all(open_recording(path))
        feeder.join()
    with via_pipe(data) as (path, feeder):
        reader = open_recording(path, tolerate_truncated=True)
        assert read_all(reader) == complete
        assert reader.truncated_bytes == len(data) - reader.position
        feeder.join()


def test_an_oversize_prefix_in_a_stream_is_refused_without_reading_it() -> None:
    data = frame(b"ok") + (1 << 30).to_bytes(4, "little") + b"\x00" * 16
    with via_pipe(data) as (path, feeder):
        reader = open_recording(path, max_frame=1 << 20)
        frames = reader.frames()
        assert next(frames) == b"ok"
        with pytest.raises(FrameTooLargeError):
            next(frames)
        reader.close()
        feeder.join()
