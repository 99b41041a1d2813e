"""Recordings of the ExEx stream: the frames exactly as read from the socket.

A recording is a header, then the frames verbatim (u32 LE length + payload):

    magic  b"ARENAREC"           8 bytes
    format u16 LE                currently 1
    length u32 LE                size of the metadata block
    JSON   RecordingMetadata     created_at, source, arena_version, notes

A file that does not start with the magic is read as a headerless raw dump (bytes as they
came off the socket). The magic cannot start a valid raw dump: read as a length prefix,
b"AREN" is about 1.3 GB, far above any frame cap.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import mmap
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Final, Literal, final

import msgspec

from exex_bridge.errors import FrameTooLargeError, RecordingFormatError, TruncatedStreamError
from exex_bridge.framing import DEFAULT_MAX_FRAME, LENGTH_PREFIX

log = logging.getLogger(__name__)

MAGIC: Final = b"ARENAREC"
FORMAT_VERSION: Final = 1
MAX_METADATA: Final = 1 << 20
_FIXED = struct.Struct("<HI")  # format version, metadata length (after the magic)
_LEN = struct.Struct("<I")
_MAX_PAYLOAD: Final = 0xFFFF_FFFF

RecordingFormat = Literal["recording", "raw"]


class RecordingMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """`source` is where the frames came from (a socket path, `anvil:URL`, ...).
    Unknown keys written by newer versions are ignored when reading."""

    created_at: str
    source: str
    arena_version: str
    notes: dict[str, str] = msgspec.field(default_factory=dict)

    @classmethod
    def new(cls, source: str, notes: dict[str, str] | None = None) -> RecordingMetadata:
        return cls(
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            source=source,
            arena_version=arena_version(),
            notes=dict(notes or {}),
        )


def arena_version() -> str:
    try:
        return importlib.metadata.version("pool-state-arena")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@final
class RecordingWriter:
    """Writes a header, then each payload framed exactly as the producer framed it.

    Refuses an existing file unless `overwrite`. `flush()` hands buffered frames to the
    OS; `sync()` also forces them to disk.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        metadata: RecordingMetadata,
        *,
        overwrite: bool = False,
        buffer_size: int = 1 << 20,
    ) -> None:
        self.path = os.fspath(path)
        self.metadata = metadata
        self._file: BinaryIO = open(self.path, "wb" if overwrite else "xb", buffering=buffer_size)  # noqa: SIM115
        meta = msgspec.json.encode(metadata)
        header = MAGIC + _FIXED.pack(FORMAT_VERSION, len(meta)) + meta
        self._file.write(header)
        self._frames = 0
        self._bytes = len(header)

    @property
    def frames(self) -> int:
        return self._frames

    @property
    def bytes_written(self) -> int:
        """File size so far, header included."""
        return self._bytes

    def write_frame(self, payload: bytes | memoryview) -> None:
        n = len(payload)
        if n > _MAX_PAYLOAD:
            raise ValueError(f"a frame payload of {n} bytes does not fit a u32 length")
        self._file.write(_LEN.pack(n))
        self._file.write(payload)
        self._frames += 1
        self._bytes += LENGTH_PREFIX + n

    def write_frames(self, payloads: Iterable[bytes | memoryview]) -> None:
        for payload in payloads:
            self.write_frame(payload)

    def flush(self) -> None:
        self._file.flush()

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@final
class RecordingReader:
    """Frames of a recording or raw dump.

    A regular file is read through a memory map (files may be GBs) and can be iterated
    again. Anything else — a pipe, a FIFO, `/dev/stdin`, a character device — is read
    once, as a stream, from the file object `open_recording` opened (a FIFO opened twice
    would wait for a second writer forever); `size` is then None.

    A file that ends inside a frame raises `TruncatedStreamError` once the complete
    frames before it were yielded; with `tolerate_truncated` the tail is skipped instead,
    logged, and its size left in `truncated_bytes`. `position` is the byte offset after
    the last frame yielded.
    """

    def __init__(
        self,
        path: str,
        format: RecordingFormat,
        metadata: RecordingMetadata | None,
        data_offset: int,
        *,
        max_frame: int,
        tolerate_truncated: bool,
        stream: _StreamInput | None = None,
    ) -> None:
        self.path = path
        self.format: RecordingFormat = format
        self.metadata = metadata
        self.data_offset = data_offset
        self.max_frame = max_frame
        self.tolerate_truncated = tolerate_truncated
        self.truncated_bytes = 0
        self.position = data_offset
        self._stream = stream
        self.size: int | None = None if stream is not None else os.stat(path).st_size

    @property
    def is_stream(self) -> bool:
        return self._stream is not None

    def frames(self) -> Iterator[bytes]:
        self.position = self.data_offset
        if self._stream is not None:
            yield from self._stream_frames(self._stream)
            return
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size <= self.data_offset:
                return
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                mm.madvise(mmap.MADV_SEQUENTIAL)
                yield from self._frames_in(mm, size)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _frames_in(self, mm: mmap.mmap, end: int) -> Iterator[bytes]:
        pos = self.data_offset
        cap = self.max_frame
        unpack = _LEN.unpack_from
        while pos < end:
            available = end - pos
            if available < LENGTH_PREFIX:
                self._truncated(pos, LENGTH_PREFIX, available)
                return
            n = unpack(mm, pos)[0]
            if n > cap:
                raise FrameTooLargeError(n, cap)
            stop = pos + LENGTH_PREFIX + n
            if stop > end:
                self._truncated(pos, LENGTH_PREFIX + n, available)
                return
            yield mm[pos + LENGTH_PREFIX : stop]
            pos = self.position = stop

    def _stream_frames(self, stream: _StreamInput) -> Iterator[bytes]:
        if stream.consumed:
            raise RecordingFormatError(self.path, "a stream can be read only once")
        stream.consumed = True
        cap = self.max_frame
        while True:
            prefix = stream.read(LENGTH_PREFIX)
            if not prefix:
                return
            if len(prefix) < LENGTH_PREFIX:
                self._truncated(self.position, LENGTH_PREFIX, len(prefix))
                return
            n = _LEN.unpack(prefix)[0]
            if n > cap:
                raise FrameTooLargeError(n, cap)
            payload = stream.read(n)
            if len(payload) < n:
                self._truncated(self.position, LENGTH_PREFIX + n, LENGTH_PREFIX + len(payload))
                return
            self.position += LENGTH_PREFIX + n
            yield payload

    def _truncated(self, offset: int, needed: int, available: int) -> None:
        if not self.tolerate_truncated:
            raise TruncatedStreamError(offset, needed, available)
        self.truncated_bytes = available
        log.warning(
            "%s ends inside a frame at byte %d (%d of %d bytes): ignoring the tail",
            self.path,
            offset,
            available,
            needed,
        )


@final
class _StreamInput:
    """A file read front to back once; bytes already read (the magic check) come first."""

    def __init__(self, file: BinaryIO, pending: bytes) -> None:
        self._file = file
        self._pending = pending
        self.consumed = False

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at the end of the stream."""
        out = self._pending[:n]
        self._pending = self._pending[n:]
        while len(out) < n:
            chunk = self._file.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return out

    def close(self) -> None:
        self._file.close()


def open_recording(
    path: str | os.PathLike[str],
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    tolerate_truncated: bool = False,
) -> RecordingReader:
    """Open a recording (detected by its magic) or a headerless raw dump; a file that is
    not a regular one (pipe, FIFO, device) is opened once and read as a stream."""
    name = os.fspath(path)
    f = open(name, "rb")  # noqa: SIM115 - a stream stays open in the reader
    try:
        regular = stat.S_ISREG(os.fstat(f.fileno()).st_mode)
        head = f.read(len(MAGIC))
        if head == MAGIC:
            metadata, data_offset = _read_header(name, f)
            pending = b""
        else:
            metadata, data_offset, pending = None, 0, head
    except BaseException:
        f.close()
        raise
    stream = None
    if regular:
        f.close()
    else:
        stream = _StreamInput(f, pending)
    return RecordingReader(
        name,
        "raw" if metadata is None else "recording",
        metadata,
        data_offset,
        max_frame=max_frame,
        tolerate_truncated=tolerate_truncated,
        stream=stream,
    )


def _read_header(name: str, f: BinaryIO) -> tuple[RecordingMetadata, int]:
    fixed = f.read(_FIXED.size)
    if len(fixed) < _FIXED.size:
        raise RecordingFormatError(name, "header cut short after the magic")
    version, length = _FIXED.unpack(fixed)
    if version != FORMAT_VERSION:
        raise RecordingFormatError(
            name, f"unknown recording format version {version} (this arena reads {FORMAT_VERSION})"
        )
    if length > MAX_METADATA:
        raise RecordingFormatError(name, f"metadata block of {length} bytes is implausible")
    raw = f.read(length)
    if len(raw) < length:
        raise RecordingFormatError(name, f"metadata cut short: {len(raw)} of {length} bytes")
    try:
        metadata = msgspec.json.decode(raw, type=RecordingMetadata)
    except msgspec.DecodeError as exc:
        raise RecordingFormatError(name, f"unreadable metadata: {exc}") from exc
    return metadata, len(MAGIC) + _FIXED.size + length
