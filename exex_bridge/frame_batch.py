"""Several socket frames in one JetStream message, byte for byte.

A batch's body is the exact concatenation of consecutive socket frames, each with its u32
little-endian length prefix: the same bytes the ExEx wrote on the socket. `encode_batch`
builds it from payloads, `split_batch` gives the payloads back. A body that does not end
exactly at a frame's end is malformed: `split_batch` raises `BatchFormatError` and says
how many whole frames came before the damage (`BatchFormatError.frames`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

from exex_bridge.errors import BridgeError

_LEN: Final = struct.Struct("<I")
_LEN_SIZE: Final = _LEN.size


class BatchFormatError(BridgeError):
    """A message body that is no exact sequence of length-prefixed frames."""

    def __init__(self, reason: str, frames: list[bytes]) -> None:
        super().__init__(f"malformed frame batch: {reason} (after {len(frames)} whole frames)")
        self.reason = reason
        self.frames = frames  # the whole frames before the damage


def encode_batch(payloads: Iterable[bytes]) -> bytes:
    """The socket's bytes for these frame payloads: each one behind its length prefix."""
    pack = _LEN.pack
    parts: list[bytes] = []
    append = parts.append
    for payload in payloads:
        append(pack(len(payload)))
        append(payload)
    return b"".join(parts)


def split_batch(body: bytes) -> list[bytes]:
    """The frame payloads of a batch body, in order (BatchFormatError if malformed)."""
    out: list[bytes] = []
    append = out.append
    unpack = _LEN.unpack_from
    end = len(body)
    pos = 0
    while pos < end:
        if end - pos < _LEN_SIZE:
            raise BatchFormatError(f"{end - pos} bytes left at {pos}, a length needs 4", out)
        (size,) = unpack(body, pos)
        start = pos + _LEN_SIZE
        pos = start + size
        if pos > end:
            raise BatchFormatError(
                f"frame at {start - _LEN_SIZE} announces {size} bytes, {end - start} remain", out
            )
        append(body[start:pos])
    return out
