"""Typed messages of the Liquidity ExEx socket protocol v2 (see docs/wire-protocol.md).

Names follow the producer's Rust types: a `ControlMessage` is one of the message classes
below, a `PoolUpdateMessage` carries one `PoolUpdatePayload` variant. Integers are Python
ints whatever their wire width; addresses and pool ids are raw `bytes`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import msgspec


class Protocol(IntEnum):
    # Enum hashes members by name in Python code; an int's hash is C-speed and agrees
    # with int equality. The arena hashes a protocol per update.
    __hash__ = int.__hash__

    UNISWAP_V2 = 0
    UNISWAP_V3 = 1
    UNISWAP_V4 = 2
    EKUBO = 3
    CURVE_STABLE = 4
    CURVE_TWO_CRYPTO = 5
    CURVE_TRICRYPTO = 6
    BALANCER_V2_WEIGHTED = 7
    FLUID = 8


class UpdateType(IntEnum):
    __hash__ = int.__hash__

    SWAP = 0
    MINT = 1
    BURN = 2


class _Wire(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    pass


# --- pool identifiers ------------------------------------------------------------------


class PoolAddress(_Wire, frozen=True, kw_only=True, gc=False):
    """`PoolIdentifier::Address`: V2, V3 and most pools (20 bytes)."""

    value: bytes


class V4PoolId(_Wire, frozen=True, kw_only=True, gc=False):
    """`PoolIdentifier::PoolId`: a V4 pool's 32-byte id."""

    value: bytes


PoolIdentifier = PoolAddress | V4PoolId


def pool_key_hex(pool_id: PoolIdentifier) -> str:
    """The lower-case hex key used in whitelists and state exports."""
    return "0x" + pool_id.value.hex()


# --- pool update payloads (the `PoolUpdate` enum, 23 variants) -------------------------


class V2Swap(_Wire, frozen=True, kw_only=True, gc=False):
    amount0: int
    amount1: int


class V2Liquidity(_Wire, frozen=True, kw_only=True, gc=False):
    amount0: int
    amount1: int


class V3Swap(_Wire, frozen=True, kw_only=True, gc=False):
    sqrt_price_x96: int
    liquidity: int
    tick: int


class V3Liquidity(_Wire, frozen=True, kw_only=True, gc=False):
    tick_lower: int
    tick_upper: int
    liquidity_delta: int


class V4Swap(_Wire, frozen=True, kw_only=True, gc=False):
    sqrt_price_x96: int
    liquidity: int
    tick: int


class V4Liquidity(_Wire, frozen=True, kw_only=True, gc=False):
    tick_lower: int
    tick_upper: int
    liquidity_delta: int


class EkuboSwap(_Wire, frozen=True, kw_only=True, gc=False):
    sqrt_ratio: int
    liquidity: int
    tick: int


class EkuboLiquidity(_Wire, frozen=True, kw_only=True, gc=False):
    tick_lower: int
    tick_upper: int
    liquidity_delta: int
    sqrt_ratio: int
    liquidity: int
    tick: int


class CurveSwap(_Wire, frozen=True, kw_only=True, gc=False):
    sold_id: int
    tokens_sold: int
    bought_id: int
    tokens_bought: int


class CurveLiquidity(_Wire, frozen=True, kw_only=True, gc=False):
    effective_balances: tuple[int, ...]
    fee: int
    offpeg_fee_multiplier: int
    initial_a: int
    future_a: int
    initial_a_time: int
    future_a_time: int


class CurveRampA(_Wire, frozen=True, kw_only=True, gc=False):
    initial_a: int
    future_a: int
    initial_a_time: int
    future_a_time: int


class CurveFeeUpdate(_Wire, frozen=True, kw_only=True, gc=False):
    fee: int
    offpeg_fee_multiplier: int


class TwoCryptoState(_Wire, frozen=True, kw_only=True, gc=False):
    balances: tuple[int, int]
    price_scale: int
    d: int


class TwoCryptoRampAgamma(_Wire, frozen=True, kw_only=True, gc=False):
    initial_a: int
    future_a: int
    initial_gamma: int
    future_gamma: int
    initial_time: int
    future_time: int


class TwoCryptoNewParameters(_Wire, frozen=True, kw_only=True, gc=False):
    mid_fee: int
    out_fee: int
    fee_gamma: int


class TricryptoState(_Wire, frozen=True, kw_only=True, gc=False):
    balances: tuple[int, int, int]
    packed_price_scale: int
    d: int


class TricryptoRampAgamma(_Wire, frozen=True, kw_only=True, gc=False):
    initial_a: int
    future_a: int
    initial_gamma: int
    future_gamma: int
    initial_time: int
    future_time: int


class TricryptoNewParameters(_Wire, frozen=True, kw_only=True, gc=False):
    mid_fee: int
    out_fee: int
    fee_gamma: int


class BalancerSwap(_Wire, frozen=True, kw_only=True, gc=False):
    token_in: bytes
    token_out: bytes
    amount_in: int
    amount_out: int


class BalancerLiquidity(_Wire, frozen=True, kw_only=True, gc=False):
    tokens: tuple[bytes, ...]
    deltas: tuple[int, ...]


class BalancerFeeUpdate(_Wire, frozen=True, kw_only=True, gc=False):
    swap_fee_percentage: int


class FluidReserves(_Wire, frozen=True, kw_only=True, gc=False):
    """The producer's `FluidState` struct: ten u128 reserve figures (1e12 decimals)."""

    col_token0_real: int
    col_token1_real: int
    col_token0_imaginary: int
    col_token1_imaginary: int
    debt_token0_real: int
    debt_token1_real: int
    debt_token0_imaginary: int
    debt_token1_imaginary: int
    center_price: int
    fee: int


class FluidState(_Wire, frozen=True, kw_only=True, gc=False):
    state: FluidReserves


class V2Sync(_Wire, frozen=True, kw_only=True, gc=False):
    reserve0: int
    reserve1: int


PoolUpdatePayload = (
    V2Swap
    | V2Liquidity
    | V3Swap
    | V3Liquidity
    | V4Swap
    | V4Liquidity
    | EkuboSwap
    | EkuboLiquidity
    | CurveSwap
    | CurveLiquidity
    | CurveRampA
    | CurveFeeUpdate
    | TwoCryptoState
    | TwoCryptoRampAgamma
    | TwoCryptoNewParameters
    | TricryptoState
    | TricryptoRampAgamma
    | TricryptoNewParameters
    | BalancerSwap
    | BalancerLiquidity
    | BalancerFeeUpdate
    | FluidState
    | V2Sync
)

# Variant index on the wire -> class, in the producer's declaration order.
POOL_UPDATE_VARIANTS: Final[tuple[type[PoolUpdatePayload], ...]] = (
    V2Swap,
    V2Liquidity,
    V3Swap,
    V3Liquidity,
    V4Swap,
    V4Liquidity,
    EkuboSwap,
    EkuboLiquidity,
    CurveSwap,
    CurveLiquidity,
    CurveRampA,
    CurveFeeUpdate,
    TwoCryptoState,
    TwoCryptoRampAgamma,
    TwoCryptoNewParameters,
    TricryptoState,
    TricryptoRampAgamma,
    TricryptoNewParameters,
    BalancerSwap,
    BalancerLiquidity,
    BalancerFeeUpdate,
    FluidState,
    V2Sync,
)


class PoolUpdateMessage(_Wire, frozen=True, kw_only=True, gc=False):
    pool_id: PoolIdentifier
    protocol: Protocol
    update_type: UpdateType
    block_number: int
    block_timestamp: int
    tx_index: int
    log_index: int
    is_revert: bool
    update: PoolUpdatePayload


# --- reorg epilogue --------------------------------------------------------------------


class Slot0State(_Wire, frozen=True, kw_only=True, gc=False):
    sqrt_price_x96: int
    liquidity: int
    tick: int


class Slot0Final(_Wire, frozen=True, kw_only=True, gc=False):
    pool_id: PoolIdentifier
    protocol: Protocol
    state: Slot0State


class FluidStateFinal(_Wire, frozen=True, kw_only=True, gc=False):
    pool_id: PoolIdentifier
    state: FluidReserves


class V2ReservesFinal(_Wire, frozen=True, kw_only=True, gc=False):
    pool_id: PoolIdentifier
    reserve0: int
    reserve1: int


ReorgEpilogueUpdate = Slot0Final | FluidStateFinal | V2ReservesFinal


class ReorgRange(_Wire, frozen=True, kw_only=True, gc=False):
    first_block: int | None
    last_block: int | None
    block_count: int


# --- control messages ------------------------------------------------------------------


class UpdateWhitelist(_Wire, frozen=True, kw_only=True, gc=False):
    """Variant 0, kept as its raw payload (see docs/decisions/0002-whitelist-frames-opaque.md)."""

    payload: bytes


class BeginBlock(_Wire, frozen=True, kw_only=True, gc=False):
    stream_seq: int
    block_number: int
    block_timestamp: int
    base_fee_per_gas: int
    is_revert: bool


class PoolUpdate(_Wire, frozen=True, kw_only=True, gc=False):
    stream_seq: int
    event: PoolUpdateMessage


class EndBlock(_Wire, frozen=True, kw_only=True, gc=False):
    stream_seq: int
    block_number: int
    num_updates: int


class Ping(_Wire, frozen=True, kw_only=True, gc=False):
    pass


class Pong(_Wire, frozen=True, kw_only=True, gc=False):
    pass


class ReorgStart(_Wire, frozen=True, kw_only=True, gc=False):
    stream_seq: int
    old_range: ReorgRange
    new_range: ReorgRange


class ReorgEpilogue(_Wire, frozen=True, kw_only=True, gc=False):
    stream_seq: int
    final_tip_block: int
    final_tip_timestamp: int
    update: ReorgEpilogueUpdate


class ReorgComplete(_Wire, frozen=True, kw_only=True, gc=False):
    stream_seq: int
    final_tip_block: int


ControlMessage = (
    UpdateWhitelist
    | BeginBlock
    | PoolUpdate
    | EndBlock
    | Ping
    | Pong
    | ReorgStart
    | ReorgEpilogue
    | ReorgComplete
)

SequencedMessage = BeginBlock | PoolUpdate | EndBlock | ReorgStart | ReorgEpilogue | ReorgComplete

CONTROL_VARIANTS: Final[tuple[type[ControlMessage], ...]] = (
    UpdateWhitelist,
    BeginBlock,
    PoolUpdate,
    EndBlock,
    Ping,
    Pong,
    ReorgStart,
    ReorgEpilogue,
    ReorgComplete,
)
