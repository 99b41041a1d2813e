"""The packed path the executor contract reads: one 21-byte record per hop.

Each hop is the pool's 20-byte address followed by one flags byte: bit 0 is the swap
direction (1: token0 → token1, "zero for one"), bits 1–4 the hop kind (`HopKind`), bits
5–7 are reserved and must be zero. The contract walks the records in order; the first
hop is the flash swap that funds the cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Final

import msgspec

from executor.errors import PathEncodingError

HOP_BYTES: Final = 21
MAX_HOPS: Final = 8
_DIRECTION_BIT: Final = 0x01
_KIND_SHIFT: Final = 1
_KIND_MASK: Final = 0x1E
_RESERVED_MASK: Final = 0xE0


class HopKind(IntEnum):
    """How the contract talks to a pool (the value is stored in the flags byte)."""

    UNISWAP_V2 = 0
    UNISWAP_V3 = 1


class Hop(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    pool: bytes  # 20-byte address
    kind: HopKind
    zero_for_one: bool


def encode_path(hops: Sequence[Hop]) -> bytes:
    """Pack `hops` for the contract; raises PathEncodingError for an unusable path."""
    if not 2 <= len(hops) <= MAX_HOPS:
        raise PathEncodingError(len(hops), f"a cycle has 2 to {MAX_HOPS} hops")
    out = bytearray()
    for i, hop in enumerate(hops):
        if len(hop.pool) != 20:
            raise PathEncodingError(i, f"pool address is {len(hop.pool)} bytes, not 20")
        out += hop.pool
        out.append((int(hop.kind) << _KIND_SHIFT) | (_DIRECTION_BIT if hop.zero_for_one else 0))
    return bytes(out)


def decode_path(packed: bytes) -> tuple[Hop, ...]:
    """The inverse of `encode_path`, with the same checks the contract makes."""
    if len(packed) % HOP_BYTES:
        raise PathEncodingError(len(packed), f"length is not a multiple of {HOP_BYTES}")
    count = len(packed) // HOP_BYTES
    if not 2 <= count <= MAX_HOPS:
        raise PathEncodingError(count, f"a cycle has 2 to {MAX_HOPS} hops")
    hops = []
    for i in range(count):
        record = packed[i * HOP_BYTES : (i + 1) * HOP_BYTES]
        flags = record[20]
        if flags & _RESERVED_MASK:
            raise PathEncodingError(i, f"reserved flag bits set: {flags:#04x}")
        kind = (flags & _KIND_MASK) >> _KIND_SHIFT
        if kind not in HopKind._value2member_map_:
            raise PathEncodingError(i, f"unknown hop kind {kind}")
        hops.append(
            Hop(pool=record[:20], kind=HopKind(kind), zero_for_one=bool(flags & _DIRECTION_BIT))
        )
    return tuple(hops)
