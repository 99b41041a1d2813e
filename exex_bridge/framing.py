"""The u32 little-endian length framing of the ExEx stream.

`FrameSplitter` turns arbitrary chunks of a byte stream into whole frame payloads. It
checks each length prefix against the cap *before* waiting for the body, so an absurd
length is rejected without allocating it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, final

from exex_bridge.errors import FrameTooLargeError, TruncatedStreamError

DEFAULT_MAX_FRAME: Final = 16 * 1024 * 1024
LENGTH_PREFIX: Final = 4
_LEN = struct.Struct("<I")


def frame(payload: bytes) -> bytes:
    """Prefix a payload with its u32 LE length."""
    return _LEN.pack(len(payload)) + payload


@final
class FrameSplitter:
    """Incremental frame parser: `feed(chunk)` returns the payloads completed by it."""

    __slots__ = ("_buf", "_consumed", "_error", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._consumed = 0
        self._error: FrameTooLargeError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buf)

    @property
    def error(self) -> FrameTooLargeError | None:
        """The oversize prefix met after the frames last returned (raised by the next feed)."""
        return self._error

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet returned inside a frame."""
        return self._consumed

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[bytes]:
        """The frames completed by `chunk`. An oversize length prefix raises
        FrameTooLargeError, but only after the whole frames before it were returned."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += chunk
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        unpack = _LEN.unpack_from
        cap = self.max_frame
        while end - pos >= LENGTH_PREFIX:
            n = unpack(buf, pos)[0]
            if n > cap:
                self._consumed += pos
                del buf[:pos]
                self._error = FrameTooLargeError(n, cap)
                if out:
                    return out
                raise self._error
            stop = pos + LENGTH_PREFIX + n
            if stop > end:
                break
            out.append(bytes(buf[pos + LENGTH_PREFIX : stop]))
            pos = stop
        if pos:
            del buf[:pos]
            self._consumed += pos
        return out

    def finish(self) -> None:
        """At the end of the stream: raise if a partial frame is left over."""
        if self._buf:
            needed = LENGTH_PREFIX
            if len(self._buf) >= LENGTH_PREFIX:
                needed += _LEN.unpack_from(self._buf, 0)[0]
            raise TruncatedStreamError(self._consumed, needed, len(self._buf))


def iter_frames(
    data: bytes | memoryview, max_frame: int = DEFAULT_MAX_FRAME, start: int = 0
) -> Iterator[memoryview]:
    """Every frame payload of a complete in-memory stream, as zero-copy views."""
    view = memoryview(data)
    pos = start
    end = len(view)
    unpack = _LEN.unpack_from
    while pos < end:
        if end - pos < LENGTH_PREFIX:
            raise TruncatedStreamError(pos, LENGTH_PREFIX, end - pos)
        n = unpack(view, pos)[0]
        if n > max_frame:
            raise FrameTooLargeError(n, max_frame)
        stop = pos + LENGTH_PREFIX + n
        if stop > end:
            raise TruncatedStreamError(pos, LENGTH_PREFIX + n, end - pos)
        yield view[pos + LENGTH_PREFIX : stop]
        pos = stop
