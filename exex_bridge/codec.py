"""Encode and decode `ControlMessage` frames exactly as the producer's bincode does.

`decode_message(payload)` takes one frame's payload (without the u32 length prefix) and
returns a typed message or raises `CodecError`; the whole payload must be consumed.
`encode_message(msg)` returns the payload, `encode_frame(msg)` the length-prefixed frame.

Every fixed-size variant combination (all the hot ones: V2Sync, V3/V4 swaps and liquidity,
BeginBlock, EndBlock) is read by one compiled `struct` layout (see codec_fast.py); any
irregularity falls back to the generic reader, which yields the precise error. Both paths
are property-tested equal. `decode_frames(buffer)` decodes a run of whole frames in one
loop, the framing inlined.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from exex_bridge import bincode as b
from exex_bridge import messages as m
from exex_bridge.codec_fast import compile_layouts
from exex_bridge.errors import CodecError, FrameTooLargeError
from exex_bridge.framing import DEFAULT_MAX_FRAME

POOL_IDENTIFIER: Final = b.Enum(
    "PoolIdentifier",
    [
        (m.PoolAddress, b.Struct(m.PoolAddress, [("value", b.ADDRESS)])),
        (m.V4PoolId, b.Struct(m.V4PoolId, [("value", b.BYTES32)])),
    ],
)
PROTOCOL: Final = b.IntEnumType(m.Protocol, len(m.Protocol), "Protocol")
UPDATE_TYPE: Final = b.IntEnumType(m.UpdateType, len(m.UpdateType), "UpdateType")

_Fields = list[tuple[str, b.WireType]]
_SLOT0: _Fields = [
    ("sqrt_price_x96", b.U256),
    ("liquidity", b.U128),
    ("tick", b.I32),
]
_LIQ: _Fields = [
    ("tick_lower", b.I32),
    ("tick_upper", b.I32),
    ("liquidity_delta", b.I128),
]
_RAMP: _Fields = [
    ("initial_a", b.U64),
    ("future_a", b.U64),
    ("initial_gamma", b.U128),
    ("future_gamma", b.U128),
    ("initial_time", b.U64),
    ("future_time", b.U64),
]
_PARAMS: _Fields = [
    ("mid_fee", b.U64),
    ("out_fee", b.U64),
    ("fee_gamma", b.U128),
]
FLUID_RESERVES: Final = b.Struct(
    m.FluidReserves, [(name, b.U128) for name in m.FluidReserves.__struct_fields__]
)

_PAYLOAD_FIELDS: Final[dict[type[Any], list[tuple[str, b.WireType]]]] = {
    m.V2Swap: [("amount0", b.I256), ("amount1", b.I256)],
    m.V2Liquidity: [("amount0", b.I256), ("amount1", b.I256)],
    m.V3Swap: _SLOT0,
    m.V3Liquidity: _LIQ,
    m.V4Swap: _SLOT0,
    m.V4Liquidity: _LIQ,
    m.EkuboSwap: [("sqrt_ratio", b.U256), ("liquidity", b.U128), ("tick", b.I32)],
    m.EkuboLiquidity: [
        *_LIQ,
        ("sqrt_ratio", b.U256),
        ("liquidity", b.U128),
        ("tick", b.I32),
    ],
    m.CurveSwap: [
        ("sold_id", b.U8),
        ("tokens_sold", b.U128),
        ("bought_id", b.U8),
        ("tokens_bought", b.U128),
    ],
    m.CurveLiquidity: [
        ("effective_balances", b.Vec(b.U128)),
        ("fee", b.U64),
        ("offpeg_fee_multiplier", b.U64),
        ("initial_a", b.U64),
        ("future_a", b.U64),
        ("initial_a_time", b.U64),
        ("future_a_time", b.U64),
    ],
    m.CurveRampA: [
        ("initial_a", b.U64),
        ("future_a", b.U64),
        ("initial_a_time", b.U64),
        ("future_a_time", b.U64),
    ],
    m.CurveFeeUpdate: [("fee", b.U64), ("offpeg_fee_multiplier", b.U64)],
    m.TwoCryptoState: [
        ("balances", b.Array(b.U128, 2)),
        ("price_scale", b.U256),
        ("d", b.U256),
    ],
    m.TwoCryptoRampAgamma: _RAMP,
    m.TwoCryptoNewParameters: _PARAMS,
    m.TricryptoState: [
        ("balances", b.Array(b.U128, 3)),
        ("packed_price_scale", b.U256),
        ("d", b.U256),
    ],
    m.TricryptoRampAgamma: _RAMP,
    m.TricryptoNewParameters: _PARAMS,
    m.BalancerSwap: [
        ("token_in", b.ADDRESS),
        ("token_out", b.ADDRESS),
        ("amount_in", b.U256),
        ("amount_out", b.U256),
    ],
    m.BalancerLiquidity: [("tokens", b.Vec(b.ADDRESS)), ("deltas", b.Vec(b.I128))],
    m.BalancerFeeUpdate: [("swap_fee_percentage", b.U64)],
    m.FluidState: [("state", FLUID_RESERVES)],
    m.V2Sync: [("reserve0", b.U128), ("reserve1", b.U128)],
}

POOL_UPDATE: Final = b.Enum(
    "PoolUpdate",
    [(cls, b.Struct(cls, _PAYLOAD_FIELDS[cls])) for cls in m.POOL_UPDATE_VARIANTS],
)

POOL_UPDATE_MESSAGE: Final = b.Struct(
    m.PoolUpdateMessage,
    [
        ("pool_id", POOL_IDENTIFIER),
        ("protocol", PROTOCOL),
        ("update_type", UPDATE_TYPE),
        ("block_number", b.U64),
        ("block_timestamp", b.U64),
        ("tx_index", b.U64),
        ("log_index", b.U64),
        ("is_revert", b.BOOL),
        ("update", POOL_UPDATE),
    ],
)

REORG_RANGE: Final = b.Struct(
    m.ReorgRange,
    [
        ("first_block", b.Option(b.U64)),
        ("last_block", b.Option(b.U64)),
        ("block_count", b.U64),
    ],
)

REORG_EPILOGUE_UPDATE: Final = b.Enum(
    "ReorgEpilogueUpdate",
    [
        (
            m.Slot0Final,
            b.Struct(
                m.Slot0Final,
                [
                    ("pool_id", POOL_IDENTIFIER),
                    ("protocol", PROTOCOL),
                    ("state", b.Struct(m.Slot0State, _SLOT0)),
                ],
            ),
        ),
        (
            m.FluidStateFinal,
            b.Struct(m.FluidStateFinal, [("pool_id", POOL_IDENTIFIER), ("state", FLUID_RESERVES)]),
        ),
        (
            m.V2ReservesFinal,
            b.Struct(
                m.V2ReservesFinal,
                [("pool_id", POOL_IDENTIFIER), ("reserve0", b.U128), ("reserve1", b.U128)],
            ),
        ),
    ],
)


class _WhitelistPayload:
    """Variant 0's struct is kept opaque: the rest of the frame is its payload."""

    min_size = 0

    def read(self, r: b.Reader) -> m.UpdateWhitelist:
        return m.UpdateWhitelist(payload=r.take(r.end - r.pos))

    def write(self, out: bytearray, value: m.UpdateWhitelist) -> None:
        out += value.payload


_SEQ = ("stream_seq", b.U64)
CONTROL_MESSAGE: Final = b.Enum(
    "ControlMessage",
    [
        (m.UpdateWhitelist, _WhitelistPayload()),
        (
            m.BeginBlock,
            b.Struct(
                m.BeginBlock,
                [
                    _SEQ,
                    ("block_number", b.U64),
                    ("block_timestamp", b.U64),
                    ("base_fee_per_gas", b.U64),
                    ("is_revert", b.BOOL),
                ],
            ),
        ),
        (m.PoolUpdate, b.Struct(m.PoolUpdate, [_SEQ, ("event", POOL_UPDATE_MESSAGE)])),
        (
            m.EndBlock,
            b.Struct(m.EndBlock, [_SEQ, ("block_number", b.U64), ("num_updates", b.U64)]),
        ),
        (m.Ping, b.Struct(m.Ping, [])),
        (m.Pong, b.Struct(m.Pong, [])),
        (
            m.ReorgStart,
            b.Struct(m.ReorgStart, [_SEQ, ("old_range", REORG_RANGE), ("new_range", REORG_RANGE)]),
        ),
        (
            m.ReorgEpilogue,
            b.Struct(
                m.ReorgEpilogue,
                [
                    _SEQ,
                    ("final_tip_block", b.U64),
                    ("final_tip_timestamp", b.U64),
                    ("update", REORG_EPILOGUE_UPDATE),
                ],
            ),
        ),
        (m.ReorgComplete, b.Struct(m.ReorgComplete, [_SEQ, ("final_tip_block", b.U64)])),
    ],
)

_LEN = struct.Struct("<I")
_SEQ_AT_4 = struct.Struct("<Q")
# ControlMessage variants that start with a stream_seq (all but UpdateWhitelist, Ping,
# Pong); an unknown index has no readable stream_seq.
SEQUENCED_TAGS: Final = frozenset({1, 2, 3, 6, 7, 8})


def encode_message(msg: m.ControlMessage) -> bytes:
    """The bincode payload of one message (no length prefix)."""
    out = bytearray()
    CONTROL_MESSAGE.write(out, msg)
    return bytes(out)


def encode_frame(msg: m.ControlMessage) -> bytes:
    """One frame: u32 LE payload length, then the payload."""
    payload = encode_message(msg)
    return _LEN.pack(len(payload)) + payload


def decode_message_generic(payload: bytes | memoryview) -> m.ControlMessage:
    """The reference decoder: reads every field through the wire types."""
    r = b.Reader(payload)
    r.path.append("ControlMessage")
    if len(payload) >= 12:
        tag = _LEN.unpack_from(payload, 0)[0]
        if tag in SEQUENCED_TAGS:
            r.stream_seq = _SEQ_AT_4.unpack_from(payload, 4)[0]
    msg: m.ControlMessage = CONTROL_MESSAGE.read(r)
    if r.pos != r.end:
        raise r.fail(f"{r.end - r.pos} bytes left over after the message")
    return msg


_FAST: Final = compile_layouts(CONTROL_MESSAGE)
_FIRST: Final = _FAST.first
_REST: Final = _FAST.rest


def decode_fast(payload: bytes | memoryview) -> m.ControlMessage | None:
    """The message if a compiled layout reads the payload exactly, else None."""
    size = len(payload)
    first = _FIRST.get(size)
    if first is None:
        return None
    msg: m.ControlMessage | None = first(payload, 0)
    if msg is None:
        for decode in _REST[size]:
            msg = decode(payload, 0)
            if msg is not None:
                break
    return msg


def decode_message(payload: bytes | memoryview) -> m.ControlMessage:
    """Decode one frame payload; the compiled layouts first, the reference decoder otherwise."""
    size = len(payload)
    first = _FIRST.get(size)
    if first is not None:
        msg: m.ControlMessage | None = first(payload, 0)
        if msg is not None:
            return msg
        for decode in _REST[size]:
            msg = decode(payload, 0)
            if msg is not None:
                return msg
    return decode_message_generic(payload)


def decode_frames(
    data: bytes | bytearray | memoryview, start: int = 0, max_frame: int = DEFAULT_MAX_FRAME
) -> tuple[list[m.ControlMessage | CodecError], int]:
    """Every whole frame of `data` from `start`, decoded; and the offset where they end.

    A frame that does not decode is its `CodecError`, in place: the framing is intact, so
    the frames after it are still read. A length above `max_frame` raises
    `FrameTooLargeError`, but only once the frames before it have been returned: the
    call stops in front of it, and the next call starting there raises.
    """
    view = memoryview(data)
    out: list[m.ControlMessage | CodecError] = []
    append = out.append
    unpack_length = _LEN.unpack_from
    first_by_size, rest_by_size = _FIRST, _REST
    pos, end = start, len(view)
    while end - pos >= 4:
        n = unpack_length(view, pos)[0]
        if n > max_frame:
            if out:
                break
            raise FrameTooLargeError(n, max_frame)
        body = pos + 4
        pos = body + n
        if pos > end:
            pos = body - 4
            break
        first = first_by_size.get(n)
        msg: m.ControlMessage | CodecError | None = None
        if first is not None:
            msg = first(view, body)
            if msg is None:
                for decode in rest_by_size[n]:
                    msg = decode(view, body)
                    if msg is not None:
                        break
        if msg is None:
            try:
                msg = decode_message_generic(view[body:pos])
            except CodecError as exc:
                # Its traceback would keep this frame, and `view` with it, alive: the
                # caller could then not resize a bytearray it passed in.
                msg = exc.with_traceback(None)
        append(msg)
    return out, pos


__all__ = [
    "CONTROL_MESSAGE",
    "CodecError",
    "decode_fast",
    "decode_frames",
    "decode_message",
    "decode_message_generic",
    "encode_frame",
    "encode_message",
]
