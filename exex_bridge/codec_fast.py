"""Precompiled layouts for the frames that make up nearly all of the stream.

Each layout is one `struct` unpack of the whole payload. A layout applies only when the
payload has exactly its size and every tag, length and bool inside it is valid; otherwise
`decode_fast` returns None and the reference decoder takes over (and reports the error).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from exex_bridge import messages as m

_TAG = struct.Struct("<I")
_BEGIN = struct.Struct("<IQQQQB")
_END = struct.Struct("<IQQQ")
# ControlMessage tag, stream_seq, PoolIdentifier tag, then the identifier:
_HEAD_ADDRESS = "<IQIQ20s"
_HEAD_POOL_ID = "<IQI32s"
# protocol, update_type, block_number, block_timestamp, tx_index, log_index, is_revert, tag
_EVENT = "IIQQQQBI"
_UTAG_AT_ADDRESS: Final = struct.calcsize(_HEAD_ADDRESS + _EVENT) - 4
_UTAG_AT_POOL_ID: Final = struct.calcsize(_HEAD_POOL_ID + _EVENT) - 4

_SWAP = "Q32s16si"  # U256 length, sqrt_price BE, liquidity u128 LE, tick
_LIQUIDITY = "ii16s"  # tick_lower, tick_upper, liquidity_delta i128 LE
_SYNC = "16s16s"  # reserve0, reserve1 (u128 LE)

_PROTOCOLS: Final = tuple(m.Protocol)
_UPDATE_TYPES: Final = tuple(m.UpdateType)

Payload = m.V3Swap | m.V4Swap | m.V3Liquidity | m.V4Liquidity | m.V2Sync
_Build = Callable[[tuple[Any, ...]], Payload | None]


def _swap(cls: type[m.V3Swap] | type[m.V4Swap]) -> _Build:
    def build(f: tuple[Any, ...]) -> Payload | None:
        length, sqrt_be, liquidity, tick = f
        if length != 32:
            return None
        return cls(
            sqrt_price_x96=int.from_bytes(sqrt_be, "big"),
            liquidity=int.from_bytes(liquidity, "little"),
            tick=tick,
        )

    return build


def _liquidity(cls: type[m.V3Liquidity] | type[m.V4Liquidity]) -> _Build:
    def build(f: tuple[Any, ...]) -> Payload | None:
        lower, upper, delta = f
        return cls(
            tick_lower=lower,
            tick_upper=upper,
            liquidity_delta=int.from_bytes(delta, "little", signed=True),
        )

    return build


def _sync(f: tuple[Any, ...]) -> Payload | None:
    r0, r1 = f
    return m.V2Sync(
        reserve0=int.from_bytes(r0, "little"),
        reserve1=int.from_bytes(r1, "little"),
    )


_PAYLOADS: Final[dict[int, tuple[str, _Build]]] = {
    2: (_SWAP, _swap(m.V3Swap)),
    3: (_LIQUIDITY, _liquidity(m.V3Liquidity)),
    4: (_SWAP, _swap(m.V4Swap)),
    5: (_LIQUIDITY, _liquidity(m.V4Liquidity)),
    22: (_SYNC, _sync),
}

# (PoolIdentifier tag, PoolUpdate tag) -> (full layout, payload builder)
_LAYOUTS: Final[dict[tuple[int, int], tuple[struct.Struct, _Build]]] = {
    (pid, utag): (struct.Struct(head + _EVENT + fmt), build)
    for pid, head in ((0, _HEAD_ADDRESS), (1, _HEAD_POOL_ID))
    for utag, (fmt, build) in _PAYLOADS.items()
}


def _pool_update(payload: bytes | memoryview) -> m.PoolUpdate | None:
    size = len(payload)
    if size < _UTAG_AT_POOL_ID + 4:
        return None
    pid_tag = _TAG.unpack_from(payload, 12)[0]
    if pid_tag == 0:
        utag = _TAG.unpack_from(payload, _UTAG_AT_ADDRESS)[0]
    elif pid_tag == 1:
        utag = _TAG.unpack_from(payload, _UTAG_AT_POOL_ID)[0]
    else:
        return None
    entry = _LAYOUTS.get((pid_tag, utag))
    if entry is None or entry[0].size != size:
        return None
    layout, build = entry
    f = layout.unpack_from(payload)
    if pid_tag == 0:
        if f[3] != 20:
            return None
        pool_id: m.PoolIdentifier = m.PoolAddress(value=f[4])
        i = 5
    else:
        pool_id = m.V4PoolId(value=f[3])
        i = 4
    protocol, update_type, bn, ts, tx, li, revert = f[i : i + 7]
    if protocol >= 9 or update_type >= 3 or revert > 1:
        return None
    update = build(f[i + 8 :])
    if update is None:
        return None
    return m.PoolUpdate(
        stream_seq=f[1],
        event=m.PoolUpdateMessage(
            pool_id=pool_id,
            protocol=_PROTOCOLS[protocol],
            update_type=_UPDATE_TYPES[update_type],
            block_number=bn,
            block_timestamp=ts,
            tx_index=tx,
            log_index=li,
            is_revert=revert == 1,
            update=update,
        ),
    )


def decode_fast(payload: bytes | memoryview) -> m.ControlMessage | None:
    """The message if the payload fits a precompiled layout exactly, else None."""
    size = len(payload)
    if size < 4:
        return None
    tag = _TAG.unpack_from(payload, 0)[0]
    if tag == 2:
        return _pool_update(payload)
    if tag == 1 and size == _BEGIN.size:
        _, seq, bn, ts, base_fee, revert = _BEGIN.unpack_from(payload)
        if revert > 1:
            return None
        return m.BeginBlock(
            stream_seq=seq,
            block_number=bn,
            block_timestamp=ts,
            base_fee_per_gas=base_fee,
            is_revert=revert == 1,
        )
    if tag == 3 and size == _END.size:
        _, seq, bn, n = _END.unpack_from(payload)
        return m.EndBlock(stream_seq=seq, block_number=bn, num_updates=n)
    return None
