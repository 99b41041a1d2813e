"""Golden byte vectors for every variant of the ExEx wire, written by hand from EXEX_WIRE.md.

Each vector is spelled out field by field (hex, little-endian unless the contract says
otherwise) and checked against upstream `src/types.rs` (Sgas17/reth-exex-liquidity at
2ea87a6) for variant and field order, and against the alloy/ruint serde impls for the
`Address`/`U256`/`I256` byte forms. None of these bytes come from our encoder.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from exex_bridge import messages as m
from exex_bridge.codec import decode_message, decode_message_generic, encode_frame, encode_message


def hx(*pieces: str) -> bytes:
    return bytes.fromhex("".join(pieces))


# --- shared pieces -----------------------------------------------------------------------

POOL_ADDRESS = bytes.fromhex("88e6a0c2ddd26feeb64f039a2c41296fcb3f5640")
ADDRESS_POOL_ID = (
    "00000000"  # PoolIdentifier::Address (variant 0)
    "1400000000000000"  # Address: u64 length = 20
    "88e6a0c2ddd26feeb64f039a2c41296fcb3f5640"  # the 20 address bytes
)
V4_ID = bytes.fromhex("21c67e77068de97969ba93d4aab21826d33ca12bb9f565d8496e8fda8a82ca27")
V4_POOL_ID = (
    "01000000"  # PoolIdentifier::PoolId (variant 1)
    "21c67e77068de97969ba93d4aab21826d33ca12bb9f565d8496e8fda8a82ca27"  # [u8;32], no length
)
WETH = bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
DAI = bytes.fromhex("6b175474e89094c44da98b954eedeac495271d0f")
U128_ZERO = "00000000000000000000000000000000"
U128_MAX_HEX = "ffffffffffffffffffffffffffffffff"
U128_1E18 = "000064a7b3b6e00d0000000000000000"  # 10**18 as u128 LE
U256_LEN = "2000000000000000"  # U256: u64 length = 32
E18 = 10**18

# Protocol and UpdateType are fieldless enums: a u32 LE variant index.
UNISWAP_V2, UNISWAP_V3, UNISWAP_V4, EKUBO = "00000000", "01000000", "02000000", "03000000"
CURVE_STABLE, CURVE_TWO, CURVE_TRI = "04000000", "05000000", "06000000"
BALANCER, FLUID = "07000000", "08000000"
SWAP, MINT, BURN = "00000000", "01000000", "02000000"


class Golden(NamedTuple):
    name: str
    wire: bytes
    message: m.ControlMessage


def pool_update_wire(pool_id: str, protocol: str, update_type: str, *payload: str) -> bytes:
    return hx(
        "02000000",  # ControlMessage::PoolUpdate (variant 2)
        "2a00000000000000",  # stream_seq = 42
        pool_id,  # event.pool_id
        protocol,  # event.protocol
        update_type,  # event.update_type
        "002d310100000000",  # event.block_number = 20_000_000
        "00f1536500000000",  # event.block_timestamp = 1_700_000_000
        "0700000000000000",  # event.tx_index = 7
        "0300000000000000",  # event.log_index = 3
        "00",  # event.is_revert = false
        *payload,  # event.update: u32 variant index, then the variant's fields
    )


def pool_update_message(
    update: m.PoolUpdatePayload,
    protocol: m.Protocol,
    update_type: m.UpdateType = m.UpdateType.SWAP,
    v4: bool = False,
) -> m.PoolUpdate:
    pool_id: m.PoolIdentifier = m.V4PoolId(value=V4_ID) if v4 else m.PoolAddress(value=POOL_ADDRESS)
    return m.PoolUpdate(
        stream_seq=42,
        event=m.PoolUpdateMessage(
            pool_id=pool_id,
            protocol=protocol,
            update_type=update_type,
            block_number=20_000_000,
            block_timestamp=1_700_000_000,
            tx_index=7,
            log_index=3,
            is_revert=False,
            update=update,
        ),
    )


P = m.Protocol
U = m.UpdateType

# The vectors are laid out one wire field per line; keep the formatter away from them.
# fmt: off
POOL_UPDATE_GOLDENS: list[Golden] = [
    Golden(
        "V2Swap-zero-and-negative",
        pool_update_wire(
            ADDRESS_POOL_ID, UNISWAP_V2, SWAP,
            "00000000",  # PoolUpdate::V2Swap (variant 0)
            "0100000000000000", "01",  # amount0 I256 = 0: length 1, sign byte 1, no magnitude
            "0300000000000000", "00", "e803",  # amount1 I256 = -1000: length 3, sign 0, 1000 LE
        ),
        pool_update_message(m.V2Swap(amount0=0, amount1=-1000), P.UNISWAP_V2),
    ),
    Golden(
        "V2Swap-positive-and-minus-one",
        pool_update_wire(
            ADDRESS_POOL_ID, UNISWAP_V2, SWAP,
            "00000000",  # PoolUpdate::V2Swap (variant 0)
            "0400000000000000", "01", "40420f",  # amount0 I256 = 1_000_000 (magnitude trimmed)
            "0200000000000000", "00", "01",  # amount1 I256 = -1
        ),
        pool_update_message(m.V2Swap(amount0=1_000_000, amount1=-1), P.UNISWAP_V2),
    ),
    Golden(
        "V2Liquidity-33-byte-extremes",
        pool_update_wire(
            ADDRESS_POOL_ID, UNISWAP_V2, MINT,
            "01000000",  # PoolUpdate::V2Liquidity (variant 1)
            "2100000000000000", "01",  # amount0 I256 = 2**255 - 1: length 33, sign 1
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # magnitude LE
            "2100000000000000", "00",  # amount1 I256 = -2**255: length 33, sign 0
            "0000000000000000000000000000000000000000000000000000000000000080",  # 2**255 LE
        ),
        pool_update_message(
            m.V2Liquidity(amount0=2**255 - 1, amount1=-(2**255)), P.UNISWAP_V2, U.MINT
        ),
    ),
    Golden(
        "V3Swap",
        pool_update_wire(
            ADDRESS_POOL_ID, UNISWAP_V3, SWAP,
            "02000000",  # PoolUpdate::V3Swap (variant 2)
            U256_LEN,  # sqrt_price_x96 U256: length 32
            "0000000000000000000000000000000000000001000000000000000000000000",  # 2**96, BE
            U128_1E18,  # liquidity u128 = 10**18
            "fbffffff",  # tick i32 = -5
        ),
        pool_update_message(
            m.V3Swap(sqrt_price_x96=2**96, liquidity=E18, tick=-5), P.UNISWAP_V3
        ),
    ),
    Golden(
        "V3Liquidity-burn",
        pool_update_wire(
            ADDRESS_POOL_ID, UNISWAP_V3, BURN,
            "03000000",  # PoolUpdate::V3Liquidity (variant 3)
            "4c76f2ff",  # tick_lower i32 = -887220
            "b4890d00",  # tick_upper i32 = 887220
            "eb32a4f8ffffffffffffffffffffffff",  # liquidity_delta i128 = -123456789 (burn)
        ),
        pool_update_message(
            m.V3Liquidity(tick_lower=-887220, tick_upper=887220, liquidity_delta=-123456789),
            P.UNISWAP_V3,
            U.BURN,
        ),
    ),
    Golden(
        "V4Swap-on-pool-id",
        pool_update_wire(
            V4_POOL_ID, UNISWAP_V4, SWAP,
            "04000000",  # PoolUpdate::V4Swap (variant 4)
            U256_LEN,  # sqrt_price_x96 U256: length 32
            "000000000000000000000000fffd8963efd1fc6a506488495d951d5263988d26",  # MAX_SQRT_RATIO
            U128_ZERO,  # liquidity u128 = 0
            "e7890d00",  # tick i32 = 887271
        ),
        pool_update_message(
            m.V4Swap(
                sqrt_price_x96=1461446703485210103287273052203988822378723970342,
                liquidity=0,
                tick=887271,
            ),
            P.UNISWAP_V4,
            v4=True,
        ),
    ),
    Golden(
        "V4Liquidity-mint-on-pool-id",
        pool_update_wire(
            V4_POOL_ID, UNISWAP_V4, MINT,
            "05000000",  # PoolUpdate::V4Liquidity (variant 5)
            "c4ffffff",  # tick_lower i32 = -60
            "3c000000",  # tick_upper i32 = 60
            "ffffffffffffffffffffffffffffff7f",  # liquidity_delta i128 = 2**127 - 1
        ),
        pool_update_message(
            m.V4Liquidity(tick_lower=-60, tick_upper=60, liquidity_delta=2**127 - 1),
            P.UNISWAP_V4,
            U.MINT,
            v4=True,
        ),
    ),
    Golden(
        "EkuboSwap",
        pool_update_wire(
            V4_POOL_ID, EKUBO, SWAP,
            "06000000",  # PoolUpdate::EkuboSwap (variant 6)
            U256_LEN,  # sqrt_ratio U256: length 32
            "0000000000000000000000000000000000000000000000010000000000000000",  # 2**64, BE
            "01000000000000000000000000000000",  # liquidity u128 = 1
            "00000000",  # tick i32 = 0
        ),
        pool_update_message(m.EkuboSwap(sqrt_ratio=2**64, liquidity=1, tick=0), P.EKUBO, v4=True),
    ),
    Golden(
        "EkuboLiquidity",
        pool_update_wire(
            V4_POOL_ID, EKUBO, MINT,
            "07000000",  # PoolUpdate::EkuboLiquidity (variant 7)
            "9cffffff",  # tick_lower i32 = -100
            "c8000000",  # tick_upper i32 = 200
            "ffffffffffffffffffffffffffffffff",  # liquidity_delta i128 = -1
            U256_LEN,  # sqrt_ratio U256: length 32
            "0000000000000000000000000000000000000000000000000123456789abcdef",  # BE
            "05000000000000000000000000000000",  # liquidity u128 = 5
            "ffffffff",  # tick i32 = -1
        ),
        pool_update_message(
            m.EkuboLiquidity(
                tick_lower=-100,
                tick_upper=200,
                liquidity_delta=-1,
                sqrt_ratio=0x0123456789ABCDEF,
                liquidity=5,
                tick=-1,
            ),
            P.EKUBO,
            U.MINT,
            v4=True,
        ),
    ),
    Golden(
        "CurveSwap",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_STABLE, SWAP,
            "08000000",  # PoolUpdate::CurveSwap (variant 8)
            "00",  # sold_id u8 = 0
            "40420f00000000000000000000000000",  # tokens_sold u128 = 1_000_000
            "01",  # bought_id u8 = 1
            "4c400f00000000000000000000000000",  # tokens_bought u128 = 999_500
        ),
        pool_update_message(
            m.CurveSwap(sold_id=0, tokens_sold=1_000_000, bought_id=1, tokens_bought=999_500),
            P.CURVE_STABLE,
        ),
    ),
    Golden(
        "CurveLiquidity-three-balances",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_STABLE, MINT,
            "09000000",  # PoolUpdate::CurveLiquidity (variant 9)
            "0300000000000000",  # effective_balances Vec<u128>: u64 count = 3
            "01000000000000000000000000000000",  # effective_balances[0] = 1
            U128_MAX_HEX,  # effective_balances[1] = 2**128 - 1
            "00100000000000000000000000000000",  # effective_balances[2] = 0x1000
            "00093d0000000000",  # fee u64 = 4_000_000
            "00c817a804000000",  # offpeg_fee_multiplier u64 = 20_000_000_000
            "204e000000000000",  # initial_a u64 = 20_000
            "3075000000000000",  # future_a u64 = 30_000
            "00f1536500000000",  # initial_a_time u64 = 1_700_000_000
            "8042556500000000",  # future_a_time u64 = 1_700_086_400
        ),
        pool_update_message(
            m.CurveLiquidity(
                effective_balances=(1, 2**128 - 1, 0x1000),
                fee=4_000_000,
                offpeg_fee_multiplier=20_000_000_000,
                initial_a=20_000,
                future_a=30_000,
                initial_a_time=1_700_000_000,
                future_a_time=1_700_086_400,
            ),
            P.CURVE_STABLE,
            U.MINT,
        ),
    ),
    Golden(
        "CurveLiquidity-empty-vec",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_STABLE, BURN,
            "09000000",  # PoolUpdate::CurveLiquidity (variant 9)
            "0000000000000000",  # effective_balances Vec<u128>: u64 count = 0, no elements
            "0100000000000000",  # fee u64 = 1
            "0200000000000000",  # offpeg_fee_multiplier u64 = 2
            "0300000000000000",  # initial_a u64 = 3
            "0400000000000000",  # future_a u64 = 4
            "0500000000000000",  # initial_a_time u64 = 5
            "0600000000000000",  # future_a_time u64 = 6
        ),
        pool_update_message(
            m.CurveLiquidity(
                effective_balances=(),
                fee=1,
                offpeg_fee_multiplier=2,
                initial_a=3,
                future_a=4,
                initial_a_time=5,
                future_a_time=6,
            ),
            P.CURVE_STABLE,
            U.BURN,
        ),
    ),
    Golden(
        "CurveRampA",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_STABLE, SWAP,
            "0a000000",  # PoolUpdate::CurveRampA (variant 10)
            "6400000000000000",  # initial_a u64 = 100
            "c800000000000000",  # future_a u64 = 200
            "0100000000000000",  # initial_a_time u64 = 1
            "ffffffffffffffff",  # future_a_time u64 = 2**64 - 1
        ),
        pool_update_message(
            m.CurveRampA(initial_a=100, future_a=200, initial_a_time=1, future_a_time=2**64 - 1),
            P.CURVE_STABLE,
        ),
    ),
    Golden(
        "CurveFeeUpdate",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_STABLE, SWAP,
            "0b000000",  # PoolUpdate::CurveFeeUpdate (variant 11)
            "40420f0000000000",  # fee u64 = 1_000_000
            "00743ba40b000000",  # offpeg_fee_multiplier u64 = 50_000_000_000
        ),
        pool_update_message(
            m.CurveFeeUpdate(fee=1_000_000, offpeg_fee_multiplier=50_000_000_000), P.CURVE_STABLE
        ),
    ),
    Golden(
        "TwoCryptoState",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_TWO, SWAP,
            "0c000000",  # PoolUpdate::TwoCryptoState (variant 12)
            U128_1E18,  # balances[0] u128 = 10**18 ([u128; 2]: no length prefix)
            "0000c84e676dc11b0000000000000000",  # balances[1] u128 = 2 * 10**18
            U256_LEN,  # price_scale U256: length 32
            "0000000000000000000000000000000000000000000000000de0b6b3a7640000",  # 10**18, BE
            U256_LEN,  # d U256: length 32
            "0000000000000000000000000000000000000000000000000000000000000000",  # 0
        ),
        pool_update_message(
            m.TwoCryptoState(balances=(E18, 2 * E18), price_scale=E18, d=0), P.CURVE_TWO_CRYPTO
        ),
    ),
    Golden(
        "TwoCryptoRampAgamma",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_TWO, SWAP,
            "0d000000",  # PoolUpdate::TwoCryptoRampAgamma (variant 13)
            "801a060000000000",  # initial_a u64 = 400_000
            "20a1070000000000",  # future_a u64 = 500_000
            "00107e71e08300000000000000000000",  # initial_gamma u128 = 145_000_000_000_000
            U128_MAX_HEX,  # future_gamma u128 = 2**128 - 1
            "0100000000000000",  # initial_time u64 = 1
            "0200000000000000",  # future_time u64 = 2
        ),
        pool_update_message(
            m.TwoCryptoRampAgamma(
                initial_a=400_000,
                future_a=500_000,
                initial_gamma=145_000_000_000_000,
                future_gamma=2**128 - 1,
                initial_time=1,
                future_time=2,
            ),
            P.CURVE_TWO_CRYPTO,
        ),
    ),
    Golden(
        "TwoCryptoNewParameters",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_TWO, SWAP,
            "0e000000",  # PoolUpdate::TwoCryptoNewParameters (variant 14)
            "80ba8c0100000000",  # mid_fee u64 = 26_000_000
            "40a5ae0200000000",  # out_fee u64 = 45_000_000
            "00604c0c2fd100000000000000000000",  # fee_gamma u128 = 230_000_000_000_000
        ),
        pool_update_message(
            m.TwoCryptoNewParameters(
                mid_fee=26_000_000, out_fee=45_000_000, fee_gamma=230_000_000_000_000
            ),
            P.CURVE_TWO_CRYPTO,
        ),
    ),
    Golden(
        "TricryptoState",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_TRI, SWAP,
            "0f000000",  # PoolUpdate::TricryptoState (variant 15)
            "01000000000000000000000000000000",  # balances[0] u128 = 1 ([u128; 3], no length)
            "02000000000000000000000000000000",  # balances[1] u128 = 2
            "03000000000000000000000000000000",  # balances[2] u128 = 3
            U256_LEN,  # packed_price_scale U256: length 32
            "0000000000000000000000000000000200000000000000000000000000000001",  # 2<<128 | 1
            U256_LEN,  # d U256: length 32
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # 2**256 - 1
        ),
        pool_update_message(
            m.TricryptoState(
                balances=(1, 2, 3), packed_price_scale=(2 << 128) | 1, d=2**256 - 1
            ),
            P.CURVE_TRICRYPTO,
        ),
    ),
    Golden(
        "TricryptoRampAgamma",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_TRI, SWAP,
            "10000000",  # PoolUpdate::TricryptoRampAgamma (variant 16)
            "0000000000000000",  # initial_a u64 = 0
            "ffffffffffffffff",  # future_a u64 = 2**64 - 1
            U128_ZERO,  # initial_gamma u128 = 0
            "01000000000000000000000000000000",  # future_gamma u128 = 1
            "00f1536500000000",  # initial_time u64 = 1_700_000_000
            "8042556500000000",  # future_time u64 = 1_700_086_400
        ),
        pool_update_message(
            m.TricryptoRampAgamma(
                initial_a=0,
                future_a=2**64 - 1,
                initial_gamma=0,
                future_gamma=1,
                initial_time=1_700_000_000,
                future_time=1_700_086_400,
            ),
            P.CURVE_TRICRYPTO,
        ),
    ),
    Golden(
        "TricryptoNewParameters",
        pool_update_wire(
            ADDRESS_POOL_ID, CURVE_TRI, SWAP,
            "11000000",  # PoolUpdate::TricryptoNewParameters (variant 17)
            "0100000000000000",  # mid_fee u64 = 1
            "0200000000000000",  # out_fee u64 = 2
            U128_MAX_HEX,  # fee_gamma u128 = 2**128 - 1
        ),
        pool_update_message(
            m.TricryptoNewParameters(mid_fee=1, out_fee=2, fee_gamma=2**128 - 1),
            P.CURVE_TRICRYPTO,
        ),
    ),
    Golden(
        "BalancerSwap",
        pool_update_wire(
            ADDRESS_POOL_ID, BALANCER, SWAP,
            "12000000",  # PoolUpdate::BalancerSwap (variant 18)
            "1400000000000000", "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",  # token_in = WETH
            "1400000000000000", "6b175474e89094c44da98b954eedeac495271d0f",  # token_out = DAI
            U256_LEN,  # amount_in U256: length 32
            "0000000000000000000000000000000000000000000000000de0b6b3a7640000",  # 10**18, BE
            U256_LEN,  # amount_out U256: length 32
            "0000000000000000000000000000000000000000000000a2a15d09519be00000",  # 3000 * 10**18
        ),
        pool_update_message(
            m.BalancerSwap(token_in=WETH, token_out=DAI, amount_in=E18, amount_out=3000 * E18),
            P.BALANCER_V2_WEIGHTED,
        ),
    ),
    Golden(
        "BalancerLiquidity",
        pool_update_wire(
            ADDRESS_POOL_ID, BALANCER, MINT,
            "13000000",  # PoolUpdate::BalancerLiquidity (variant 19)
            "0200000000000000",  # tokens Vec<Address>: u64 count = 2
            "1400000000000000", "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",  # tokens[0] = WETH
            "1400000000000000", "6b175474e89094c44da98b954eedeac495271d0f",  # tokens[1] = DAI
            "0200000000000000",  # deltas Vec<i128>: u64 count = 2
            U128_1E18,  # deltas[0] i128 = 10**18 (entering the pool)
            "0000b0101d291be5e4ffffffffffffff",  # deltas[1] i128 = -5 * 10**20 (leaving)
        ),
        pool_update_message(
            m.BalancerLiquidity(tokens=(WETH, DAI), deltas=(E18, -500 * E18)),
            P.BALANCER_V2_WEIGHTED,
            U.MINT,
        ),
    ),
    Golden(
        "BalancerLiquidity-empty-vecs",
        pool_update_wire(
            ADDRESS_POOL_ID, BALANCER, BURN,
            "13000000",  # PoolUpdate::BalancerLiquidity (variant 19)
            "0000000000000000",  # tokens Vec<Address>: count 0
            "0000000000000000",  # deltas Vec<i128>: count 0
        ),
        pool_update_message(
            m.BalancerLiquidity(tokens=(), deltas=()), P.BALANCER_V2_WEIGHTED, U.BURN
        ),
    ),
    Golden(
        "BalancerFeeUpdate",
        pool_update_wire(
            ADDRESS_POOL_ID, BALANCER, SWAP,
            "14000000",  # PoolUpdate::BalancerFeeUpdate (variant 20)
            "008053ee7ba80a00",  # swap_fee_percentage u64 = 3 * 10**15 (0.3%, 1e18 scale)
        ),
        pool_update_message(
            m.BalancerFeeUpdate(swap_fee_percentage=3 * 10**15), P.BALANCER_V2_WEIGHTED
        ),
    ),
    Golden(
        "FluidState",
        pool_update_wire(
            ADDRESS_POOL_ID, FLUID, SWAP,
            "15000000",  # PoolUpdate::FluidState (variant 21), then FluidState's ten u128
            "01000000000000000000000000000000",  # col_token0_real = 1
            "02000000000000000000000000000000",  # col_token1_real = 2
            "03000000000000000000000000000000",  # col_token0_imaginary = 3
            "04000000000000000000000000000000",  # col_token1_imaginary = 4
            "05000000000000000000000000000000",  # debt_token0_real = 5
            "06000000000000000000000000000000",  # debt_token1_real = 6
            "07000000000000000000000000000000",  # debt_token0_imaginary = 7
            "08000000000000000000000000000000",  # debt_token1_imaginary = 8
            U128_1E18,  # center_price = 10**18
            "0a000000000000000000000000000000",  # fee = 10
        ),
        pool_update_message(
            m.FluidState(
                state=m.FluidReserves(
                    col_token0_real=1,
                    col_token1_real=2,
                    col_token0_imaginary=3,
                    col_token1_imaginary=4,
                    debt_token0_real=5,
                    debt_token1_real=6,
                    debt_token0_imaginary=7,
                    debt_token1_imaginary=8,
                    center_price=E18,
                    fee=10,
                )
            ),
            P.FLUID,
        ),
    ),
    Golden(
        "V2Sync",
        pool_update_wire(
            ADDRESS_POOL_ID, UNISWAP_V2, SWAP,
            "16000000",  # PoolUpdate::V2Sync (variant 22)
            "00ca9a3b000000000000000000000000",  # reserve0 u128 = 1_000_000_000
            U128_MAX_HEX,  # reserve1 u128 = 2**128 - 1
        ),
        pool_update_message(m.V2Sync(reserve0=1_000_000_000, reserve1=2**128 - 1), P.UNISWAP_V2),
    ),
]

FLUID_1_TO_10 = m.FluidReserves(
    **{name: i for i, name in enumerate(m.FluidReserves.__struct_fields__, start=1)}
)
FLUID_1_TO_10_HEX = "".join(f"{i:02x}" + "00" * 15 for i in range(1, 11))  # ten u128 LE

CONTROL_GOLDENS: list[Golden] = [
    Golden(
        "UpdateWhitelist-opaque",
        hx(
            "00000000",  # ControlMessage::UpdateWhitelist (variant 0)
            "deadbeef",  # the WhitelistUpdate bytes, kept opaque to the end of the frame
        ),
        m.UpdateWhitelist(payload=bytes.fromhex("deadbeef")),
    ),
    Golden(
        "BeginBlock-revert",
        hx(
            "01000000",  # ControlMessage::BeginBlock (variant 1)
            "0100000000000000",  # stream_seq = 1
            "002d310100000000",  # block_number = 20_000_000
            "00f1536500000000",  # block_timestamp = 1_700_000_000
            "00ac23fc06000000",  # base_fee_per_gas = 30 gwei
            "01",  # is_revert = true
        ),
        m.BeginBlock(
            stream_seq=1,
            block_number=20_000_000,
            block_timestamp=1_700_000_000,
            base_fee_per_gas=30_000_000_000,
            is_revert=True,
        ),
    ),
    Golden(
        "EndBlock",
        hx(
            "03000000",  # ControlMessage::EndBlock (variant 3)
            "3930000000000000",  # stream_seq = 12345
            "002d310100000000",  # block_number = 20_000_000
            "c800000000000000",  # num_updates = 200
        ),
        m.EndBlock(stream_seq=12345, block_number=20_000_000, num_updates=200),
    ),
    Golden("Ping", hx("04000000"), m.Ping()),  # ControlMessage::Ping (variant 4), no fields
    Golden("Pong", hx("05000000"), m.Pong()),  # ControlMessage::Pong (variant 5), no fields
    Golden(
        "ReorgStart-some-and-none",
        hx(
            "06000000",  # ControlMessage::ReorgStart (variant 6)
            "0900000000000000",  # stream_seq = 9
            "01", "6400000000000000",  # old_range.first_block = Some(100)
            "01", "6500000000000000",  # old_range.last_block = Some(101)
            "0200000000000000",  # old_range.block_count = 2
            "00",  # new_range.first_block = None (tag only)
            "00",  # new_range.last_block = None
            "0000000000000000",  # new_range.block_count = 0 (a plain revert)
        ),
        m.ReorgStart(
            stream_seq=9,
            old_range=m.ReorgRange(first_block=100, last_block=101, block_count=2),
            new_range=m.ReorgRange(first_block=None, last_block=None, block_count=0),
        ),
    ),
    Golden(
        "ReorgEpilogue-Slot0Final",
        hx(
            "07000000",  # ControlMessage::ReorgEpilogue (variant 7)
            "0a00000000000000",  # stream_seq = 10
            "7b2d310100000000",  # final_tip_block = 20_000_123
            "00f1536500000000",  # final_tip_timestamp = 1_700_000_000
            "00000000",  # ReorgEpilogueUpdate::Slot0Final (variant 0)
            ADDRESS_POOL_ID,  # pool_id
            UNISWAP_V3,  # protocol
            U256_LEN,  # state.sqrt_price_x96 U256: length 32
            "0000000000000000000000000000000000000001000000000000000000000000",  # 2**96, BE
            U128_1E18,  # state.liquidity = 10**18
            "4c76f2ff",  # state.tick = -887220
        ),
        m.ReorgEpilogue(
            stream_seq=10,
            final_tip_block=20_000_123,
            final_tip_timestamp=1_700_000_000,
            update=m.Slot0Final(
                pool_id=m.PoolAddress(value=POOL_ADDRESS),
                protocol=P.UNISWAP_V3,
                state=m.Slot0State(sqrt_price_x96=2**96, liquidity=E18, tick=-887220),
            ),
        ),
    ),
    Golden(
        "ReorgEpilogue-FluidStateFinal",
        hx(
            "07000000",  # ControlMessage::ReorgEpilogue (variant 7)
            "0b00000000000000",  # stream_seq = 11
            "7b2d310100000000",  # final_tip_block = 20_000_123
            "00f1536500000000",  # final_tip_timestamp = 1_700_000_000
            "01000000",  # ReorgEpilogueUpdate::FluidStateFinal (variant 1)
            V4_POOL_ID,  # pool_id
            FLUID_1_TO_10_HEX,  # state: the ten u128 of FluidState = 1..10, in field order
        ),
        m.ReorgEpilogue(
            stream_seq=11,
            final_tip_block=20_000_123,
            final_tip_timestamp=1_700_000_000,
            update=m.FluidStateFinal(pool_id=m.V4PoolId(value=V4_ID), state=FLUID_1_TO_10),
        ),
    ),
    Golden(
        "ReorgEpilogue-V2ReservesFinal",
        hx(
            "07000000",  # ControlMessage::ReorgEpilogue (variant 7)
            "0c00000000000000",  # stream_seq = 12
            "7b2d310100000000",  # final_tip_block = 20_000_123
            "00f1536500000000",  # final_tip_timestamp = 1_700_000_000
            "02000000",  # ReorgEpilogueUpdate::V2ReservesFinal (variant 2)
            ADDRESS_POOL_ID,  # pool_id
            U128_1E18,  # reserve0 = 10**18
            U128_ZERO,  # reserve1 = 0
        ),
        m.ReorgEpilogue(
            stream_seq=12,
            final_tip_block=20_000_123,
            final_tip_timestamp=1_700_000_000,
            update=m.V2ReservesFinal(
                pool_id=m.PoolAddress(value=POOL_ADDRESS), reserve0=E18, reserve1=0
            ),
        ),
    ),
    Golden(
        "ReorgComplete",
        hx(
            "08000000",  # ControlMessage::ReorgComplete (variant 8)
            "0d00000000000000",  # stream_seq = 13
            "7b2d310100000000",  # final_tip_block = 20_000_123
        ),
        m.ReorgComplete(stream_seq=13, final_tip_block=20_000_123),
    ),
]

# fmt: on

GOLDENS = POOL_UPDATE_GOLDENS + CONTROL_GOLDENS
_ids = [g.name for g in GOLDENS]


@pytest.mark.parametrize("golden", GOLDENS, ids=_ids)
def test_decode_golden(golden: Golden) -> None:
    assert decode_message(golden.wire) == golden.message
    assert decode_message(memoryview(golden.wire)) == golden.message
    assert decode_message_generic(golden.wire) == golden.message


@pytest.mark.parametrize("golden", GOLDENS, ids=_ids)
def test_encode_golden(golden: Golden) -> None:
    assert encode_message(golden.message).hex() == golden.wire.hex()


def test_encode_frame_prefixes_the_u32_le_length() -> None:
    assert encode_frame(m.Ping()) == hx("04000000", "04000000")  # length 4, then Ping
    end_block = CONTROL_GOLDENS[2]
    assert encode_frame(end_block.message) == hx("1c000000") + end_block.wire  # length 28


def test_decoded_enums_are_the_python_enums() -> None:
    msg = decode_message(POOL_UPDATE_GOLDENS[4].wire)
    assert isinstance(msg, m.PoolUpdate)
    assert msg.event.protocol is m.Protocol.UNISWAP_V3
    assert msg.event.update_type is m.UpdateType.BURN


def _types(values: list[Any]) -> set[type[Any]]:
    return {type(v) for v in values}


def test_every_variant_has_a_golden_vector() -> None:
    assert _types([g.message for g in GOLDENS]) == set(m.CONTROL_VARIANTS)
    events = [g.message.event for g in GOLDENS if isinstance(g.message, m.PoolUpdate)]
    assert _types([e.update for e in events]) == set(m.POOL_UPDATE_VARIANTS)
    assert _types([e.pool_id for e in events]) == {m.PoolAddress, m.V4PoolId}
    epilogues = [g.message.update for g in GOLDENS if isinstance(g.message, m.ReorgEpilogue)]
    assert _types(epilogues) == {m.Slot0Final, m.FluidStateFinal, m.V2ReservesFinal}
    assert len(m.POOL_UPDATE_VARIANTS) == 23
    assert len(m.CONTROL_VARIANTS) == 9


# --- UpdateWhitelist: opaque by decision (docs/decisions/0002-whitelist-frames-opaque.md) ---


@pytest.mark.parametrize(
    "body",
    [
        "",  # an empty WhitelistUpdate body
        # A plausible start of a real WhitelistUpdate: chain String "ethereum", then more.
        "0800000000000000"  # chain: String length 8
        "657468657265756d"  # "ethereum"
        "0100000000000000",  # generated_at: String length 1 (truncated here)
    ],
)
def test_update_whitelist_payload_is_kept_byte_exact(body: str) -> None:
    wire = hx("00000000", body)  # ControlMessage::UpdateWhitelist (variant 0), then its body
    msg = decode_message(wire)
    assert msg == m.UpdateWhitelist(payload=bytes.fromhex(body))
    assert decode_message_generic(wire) == msg
    assert encode_message(msg) == wire


def test_skippable_whitelist_fields_make_distinct_values_share_bytes() -> None:
    # After `extra_tokens`, upstream `PoolMetadata` has `skip_serializing_if` Options, so
    # `01 00..00` may be twocrypto_version = Some(""), ekubo_fee = Some(0), balancer_weights
    # = Some([]), balancer_swap_fee = Some(0) or balancer_version = Some(""): the bytes do not
    # say which. The codec therefore keeps every such frame whole and never guesses.
    tail = hx("01", "0000000000000000")
    wire = hx("00000000") + tail
    assert decode_message(wire) == m.UpdateWhitelist(payload=tail)
