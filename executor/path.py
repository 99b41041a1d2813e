"""The packed path the executor contract reads: one record per hop.

Each record starts with the pool's 20-byte address (a V4 hop: its PoolManager's) and one
flags byte: bit 0 is the swap direction (1: token0 → token1, "zero for one"), bits 1–4
the hop kind (`HopKind`), bits 5–7 are reserved and must be zero. A V2 or V3 record ends
there (`HOP_BYTES`); a V4 record goes on with the pool key (`V4_KEY_BYTES`: currency0,
currency1, fee in 3 bytes, tick spacing in 3 signed bytes, hooks), a Curve record with
the coin indexes in and out (one byte each), a Balancer record with the tokens in and out
(the record's address is the pool; the contract asks it for its Vault and id). Curve
and Balancer hops are never first. The contract walks the
records in order; the first hop is the flash swap that funds the cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import Final

import msgspec

from executor.errors import PathEncodingError

HOP_BYTES: Final = 21
V4_KEY_BYTES: Final = 66
MAX_HOPS: Final = 8
_DIRECTION_BIT: Final = 0x01
_KIND_SHIFT: Final = 1
_KIND_MASK: Final = 0x1E
_RESERVED_MASK: Final = 0xE0


class HopKind(IntEnum):
    """How the contract talks to a pool (the value is stored in the flags byte)."""

    UNISWAP_V2 = 0
    UNISWAP_V3 = 1
    UNISWAP_V4 = 2
    CURVE_STABLE = 3  # a Curve StableSwap-NG pool; never the first hop (no flash swap)
    BALANCER_V2 = 4  # a Balancer V2 pool, through its Vault; never the first hop


# The bytes after the flags byte, per kind.
_KEY_BYTES: Final = {
    HopKind.UNISWAP_V2: 0,
    HopKind.UNISWAP_V3: 0,
    HopKind.UNISWAP_V4: V4_KEY_BYTES,
    HopKind.CURVE_STABLE: 2,
    HopKind.BALANCER_V2: 40,
}
_NO_FLASH: Final = frozenset({HopKind.CURVE_STABLE, HopKind.BALANCER_V2})
MAX_CURVE_COINS: Final = 8


class Hop(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    pool: bytes  # 20-byte address (V4: the PoolManager)
    kind: HopKind
    zero_for_one: bool
    # V4: the pool key (`v4_pool_key`); Curve: the coin indexes in and out
    # (`curve_coins`); Balancer: the tokens in and out (40 bytes); V2, V3: empty
    key: bytes = b""


def v4_pool_key(
    currency0: bytes, currency1: bytes, fee: int, tick_spacing: int, hooks: bytes
) -> bytes:
    """A V4 pool key as a V4 record carries it (raises PathEncodingError if unusable)."""
    if any(len(a) != 20 for a in (currency0, currency1, hooks)):
        raise PathEncodingError(0, "a V4 key's currencies and hooks are 20-byte addresses")
    if not 0 <= fee < 1 << 24 or not -(1 << 23) <= tick_spacing < 1 << 23:
        raise PathEncodingError(0, f"V4 fee {fee} / tick spacing {tick_spacing} out of range")
    spacing = tick_spacing.to_bytes(3, "big", signed=True)
    return currency0 + currency1 + fee.to_bytes(3, "big") + spacing + hooks


def curve_coins(i: int, j: int) -> bytes:
    """A Curve record's coin indexes: `i` in, `j` out."""
    if not (0 <= i < MAX_CURVE_COINS and 0 <= j < MAX_CURVE_COINS) or i == j:
        raise PathEncodingError(0, f"Curve coin indexes {i} -> {j} invalid")
    return bytes([i, j])


def encode_path(hops: Sequence[Hop]) -> bytes:
    """Pack `hops` for the contract; raises PathEncodingError for an unusable path."""
    if not 2 <= len(hops) <= MAX_HOPS:
        raise PathEncodingError(len(hops), f"a cycle has 2 to {MAX_HOPS} hops")
    out = bytearray()
    for i, hop in enumerate(hops):
        if len(hop.pool) != 20:
            raise PathEncodingError(i, f"pool address is {len(hop.pool)} bytes, not 20")
        _check_key(i, hop.kind, hop.key)
        out += hop.pool
        out.append((int(hop.kind) << _KIND_SHIFT) | (_DIRECTION_BIT if hop.zero_for_one else 0))
        out += hop.key
    return bytes(out)


def decode_path(packed: bytes) -> tuple[Hop, ...]:
    """The inverse of `encode_path`, with the same checks the contract makes."""
    hops: list[Hop] = []
    at = 0
    while at < len(packed):
        i = len(hops)
        if i == MAX_HOPS:
            raise PathEncodingError(i + 1, f"a cycle has 2 to {MAX_HOPS} hops")
        if at + HOP_BYTES > len(packed):
            raise PathEncodingError(i, f"record cut at {len(packed) - at} bytes")
        flags = packed[at + 20]
        if flags & _RESERVED_MASK:
            raise PathEncodingError(i, f"reserved flag bits set: {flags:#04x}")
        kind = (flags & _KIND_MASK) >> _KIND_SHIFT
        if kind not in HopKind._value2member_map_:
            raise PathEncodingError(i, f"unknown hop kind {kind}")
        end = at + HOP_BYTES + _KEY_BYTES[HopKind(kind)]
        if end > len(packed):
            raise PathEncodingError(i, f"record cut at {len(packed) - at} bytes")
        key = packed[at + HOP_BYTES : end]
        _check_key(i, HopKind(kind), key)
        hops.append(
            Hop(
                pool=packed[at : at + 20],
                kind=HopKind(kind),
                zero_for_one=bool(flags & _DIRECTION_BIT),
                key=key,
            )
        )
        at = end
    if len(hops) < 2:
        raise PathEncodingError(len(hops), f"a cycle has 2 to {MAX_HOPS} hops")
    return tuple(hops)


def _check_key(i: int, kind: HopKind, key: bytes) -> None:
    if len(key) != _KEY_BYTES[kind]:
        raise PathEncodingError(i, f"{kind.name} record carries {len(key)} key bytes")
    if kind is HopKind.UNISWAP_V4 and key[:20] == bytes(20):
        raise PathEncodingError(i, "V4 pool of the native currency (not supported)")
    if kind in _NO_FLASH and i == 0:
        raise PathEncodingError(i, f"a {kind.name} hop cannot be first (no flash swap)")
    if kind is HopKind.BALANCER_V2 and key[:20] == key[20:]:
        raise PathEncodingError(i, "a Balancer hop's tokens in and out are the same")
    if kind is HopKind.CURVE_STABLE and (key[0] == key[1] or max(key) >= MAX_CURVE_COINS):
        raise PathEncodingError(i, f"Curve coin indexes {key[0]} -> {key[1]} invalid")
