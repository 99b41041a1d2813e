"""Where the V4 PoolManager keeps a pool's state, and how to read it through `extsload`.

The PoolManager (v4-core 1.0.x) stores `mapping(PoolId => Pool.State) _pools` at slot 6.
A pool's `State` starts at `keccak256(abi.encode(poolId, 6))`: `slot0` there (sqrtPriceX96
in bits 0..159, tick 160..183 signed, protocolFee 184..207, lpFee 208..231), the fee
growths at +1 and +2, `liquidity` at +3, `ticks` (a mapping) at +4 and `tickBitmap` (a
mapping) at +5. A tick's first word holds liquidityGross (low 128 bits) and liquidityNet
(high 128 bits, signed). `extsload(bytes32)` returns any of these words; the producer
reads the same slots from its state provider.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from eth_hash.auto import keccak  # not eth_utils: its import pulls in pydantic

POOLS_SLOT: Final = 6
EXTSLOAD: Final = keccak(b"extsload(bytes32)")[:4]
_LIQUIDITY_OFFSET: Final = 3
_TICKS_OFFSET: Final = 4
_BITMAP_OFFSET: Final = 5
_U128: Final = (1 << 128) - 1


class V4Slot0(NamedTuple):
    sqrt_price_x96: int
    tick: int
    protocol_fee: int
    lp_fee: int


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def _word(value: int) -> bytes:
    return (value % (1 << 256)).to_bytes(32, "big")


def pool_state_slot(pool_id: bytes) -> int:
    return int.from_bytes(keccak(pool_id + _word(POOLS_SLOT)), "big")


def slot0_slot(pool_id: bytes) -> int:
    return pool_state_slot(pool_id)


def liquidity_slot(pool_id: bytes) -> int:
    return pool_state_slot(pool_id) + _LIQUIDITY_OFFSET


def tick_slot(pool_id: bytes, tick: int) -> int:
    mapping = pool_state_slot(pool_id) + _TICKS_OFFSET
    return int.from_bytes(keccak(_word(tick) + _word(mapping)), "big")


def bitmap_slot(pool_id: bytes, word_pos: int) -> int:
    mapping = pool_state_slot(pool_id) + _BITMAP_OFFSET
    return int.from_bytes(keccak(_word(word_pos) + _word(mapping)), "big")


def extsload_call(slot: int) -> bytes:
    """Calldata of `PoolManager.extsload(bytes32 slot)`."""
    return EXTSLOAD + _word(slot)


def decode_slot0(word: int) -> V4Slot0:
    return V4Slot0(
        sqrt_price_x96=word & ((1 << 160) - 1),
        tick=_signed((word >> 160) & 0xFFFFFF, 24),
        protocol_fee=(word >> 184) & 0xFFFFFF,
        lp_fee=(word >> 208) & 0xFFFFFF,
    )


def decode_tick_info(word: int) -> tuple[int, int]:
    """A tick's first word as (liquidityNet, liquidityGross)."""
    return _signed(word >> 128, 128), word & _U128


def v4_pool_id(
    currency0: bytes, currency1: bytes, fee: int, tick_spacing: int, hooks: bytes
) -> bytes:
    """`PoolId` of a pool key: keccak256(abi.encode(currency0, currency1, fee,
    tickSpacing, hooks))."""
    encoded = (
        currency0.rjust(32, b"\0")
        + currency1.rjust(32, b"\0")
        + _word(fee)
        + _word(tick_spacing)
        + hooks.rjust(32, b"\0")
    )
    return bytes(keccak(encoded))
