"""Decoding Uniswap and Curve logs into the producer's updates: values, kinds, receipt-local
indexes."""

from __future__ import annotations

import random
from typing import Any

from eth_abi.abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from exex_bridge import messages as m
from exex_bridge.producers.log_decoding import (
    CURVE_ADD,
    CURVE_EXCHANGE,
    CURVE_NEW_FEE,
    CURVE_RAMP_A,
    CURVE_REMOVE,
    CURVE_REMOVE_IMBALANCE,
    CURVE_REMOVE_ONE,
    V2_MINT,
    V2_SYNC,
    V3_BURN,
    V3_MINT,
    V3_SWAP,
    EventKind,
    decode_block_logs,
    decode_log,
)

POOL = bytes(range(20))
OTHER = bytes(20)
TRANSFER = bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")

ticks = st.integers(-887272, 887272)
u128 = st.integers(0, 2**128 - 1)


def _log(address: bytes, topics: list[bytes], data: bytes, tx: int = 0, index: int = 0) -> Any:
    return {
        "address": "0x" + address.hex(),
        "topics": ["0x" + t.hex() for t in topics],
        "data": "0x" + data.hex(),
        "transactionIndex": hex(tx),
        "logIndex": hex(index),
    }


def _word(value: int, kind: str = "uint256") -> bytes:
    return encode([kind], [value])


def _address(value: int) -> bytes:
    return encode(["address"], [value.to_bytes(20, "big")])


@given(lower=ticks, upper=ticks, amount=u128, mint=st.booleans())
def test_mint_and_burn_become_signed_liquidity_deltas(
    lower: int, upper: int, amount: int, mint: bool
) -> None:
    topics = [
        V3_MINT if mint else V3_BURN,
        _address(1),
        _word(lower, "int24"),
        _word(upper, "int24"),
    ]
    if mint:
        data = encode(["address", "uint128", "uint256", "uint256"], [b"\x01" * 20, amount, 5, 6])
    else:
        data = encode(["uint128", "uint256", "uint256"], [amount, 5, 6])
    decoded = decode_log(_log(POOL, topics, data), 3, 4, frozenset({POOL}))
    assert decoded is not None
    assert decoded.update_type is (m.UpdateType.MINT if mint else m.UpdateType.BURN)
    assert decoded.payload == m.V3Liquidity(
        tick_lower=lower, tick_upper=upper, liquidity_delta=amount if mint else -amount
    )
    message = decoded.message(7, 8, is_revert=True)
    assert message is not None and (message.tx_index, message.log_index) == (3, 4)
    assert message.protocol is m.Protocol.UNISWAP_V3 and message.is_revert


i256 = st.integers(-(2**255), 2**255 - 1)


@given(sqrt=st.integers(0, 2**160 - 1), liquidity=u128, tick=ticks, amounts=st.tuples(i256, i256))
def test_v3_swap_carries_the_post_swap_state(
    sqrt: int, liquidity: int, tick: int, amounts: tuple[int, int]
) -> None:
    topics = [V3_SWAP, _address(1), _address(2)]
    kinds = ["int256", "int256", "uint160", "uint128", "int24"]
    data = encode(kinds, [*amounts, sqrt, liquidity, tick])
    decoded = decode_log(_log(POOL, topics, data), 0, 0)
    assert decoded is not None and decoded.update_type is m.UpdateType.SWAP
    assert decoded.payload == m.V3Swap(sqrt_price_x96=sqrt, liquidity=liquidity, tick=tick)


@given(r0=st.integers(0, 2**112 - 1), r1=st.integers(0, 2**112 - 1))
def test_v2_sync_only_in_committed_blocks(r0: int, r1: int) -> None:
    decoded = decode_log(_log(POOL, [V2_SYNC], encode(["uint112", "uint112"], [r0, r1])), 0, 1)
    assert decoded is not None and decoded.payload == m.V2Sync(reserve0=r0, reserve1=r1)
    message = decoded.message(1, 2, is_revert=False)
    assert message is not None and message.protocol is m.Protocol.UNISWAP_V2
    assert decoded.message(1, 2, is_revert=True) is None  # the producer sends no revert Sync


def test_wrong_shapes_values_and_pools_are_not_decoded() -> None:
    sync = encode(["uint256", "uint256"], [2**112, 1])  # does not fit uint112
    assert decode_log(_log(POOL, [V2_SYNC], sync), 0, 0) is None
    short = encode(["uint112"], [1])
    assert decode_log(_log(POOL, [V2_SYNC], short), 0, 0) is None
    ok = encode(["uint112", "uint112"], [1, 2])
    assert decode_log(_log(POOL, [V2_SYNC, _word(1)], ok), 0, 0) is None  # extra topic
    assert decode_log(_log(POOL, [TRANSFER, _word(1), _word(2)], _word(5)), 0, 0) is None
    assert decode_log(_log(OTHER, [V2_SYNC], ok), 0, 0, frozenset({POOL})) is None
    v2_mint = decode_log(
        _log(POOL, [V2_MINT, _address(1)], encode(["uint256", "uint256"], [1, 2])), 0, 0
    )
    assert v2_mint is not None and v2_mint.kind is EventKind.V2_OTHER
    assert v2_mint.message(1, 2, is_revert=False) is None  # touches the pair, sends nothing


@settings(max_examples=60)
@given(
    shape=st.lists(st.lists(st.booleans(), max_size=6), min_size=1, max_size=8),
    seed=st.integers(0, 2**32),
)
def test_log_index_is_the_position_in_its_receipt(shape: list[list[bool]], seed: int) -> None:
    """Transactions with mixed logs (True: a pool Sync); logs arrive in any order."""
    sync = encode(["uint112", "uint112"], [1, 2])
    logs, expected, index = [], [], 0
    for tx, kinds in enumerate(shape):
        for position, is_pool in enumerate(kinds):
            if is_pool:
                logs.append(_log(POOL, [V2_SYNC], sync, tx, index))
                expected.append((tx, position))
            else:
                logs.append(_log(OTHER, [TRANSFER, _word(1), _word(2)], _word(3), tx, index))
            index += 1
    random.Random(seed).shuffle(logs)
    decoded = decode_block_logs(logs, frozenset({POOL}))
    assert [(d.tx_index, d.log_index) for d in decoded] == expected


def test_curve_events_decode_as_the_producer_sends_them() -> None:
    buyer = _address(7)
    exchange = decode_log(
        _log(
            POOL,
            [CURVE_EXCHANGE, buyer],
            encode(["int128", "uint256", "int128", "uint256"], [0, 10, 1, 9]),
        ),
        3,
        1,
    )
    assert exchange is not None
    assert (exchange.kind, exchange.protocol) == (EventKind.CURVE_STATE, m.Protocol.CURVE_STABLE)
    assert exchange.update_type is m.UpdateType.SWAP
    assert exchange.payload is None  # the state is read from storage by the follower
    assert exchange.message(1, 2, is_revert=False) is None
    for topic, data in (
        (
            CURVE_ADD,
            encode(["uint256[]", "uint256[]", "uint256", "uint256"], [[1, 2], [0, 0], 3, 4]),
        ),
        (CURVE_REMOVE, encode(["uint256[]", "uint256[]", "uint256"], [[1, 2, 3], [0, 0, 0], 4])),
        (CURVE_REMOVE_ONE, encode(["int128", "uint256", "uint256", "uint256"], [1, 5, 6, 7])),
        (
            CURVE_REMOVE_IMBALANCE,
            encode(["uint256[]", "uint256[]", "uint256", "uint256"], [[1, 2], [0, 0], 3, 4]),
        ),
    ):
        liquidity = decode_log(_log(POOL, [topic, buyer], data), 0, 0)
        assert liquidity is not None and liquidity.kind is EventKind.CURVE_STATE
        assert liquidity.update_type is m.UpdateType.MINT
    ramp = decode_log(
        _log(POOL, [CURVE_RAMP_A], encode(["uint256"] * 4, [20_000, 2**70, 1_700_000_000, 5])),
        0,
        0,
    )
    assert ramp is not None
    assert ramp.payload == m.CurveRampA(
        initial_a=20_000, future_a=2**64 - 1, initial_a_time=1_700_000_000, future_a_time=5
    )  # saturated to u64 as the producer does
    fee = decode_log(
        _log(POOL, [CURVE_NEW_FEE], encode(["uint256"] * 2, [4_000_000, 2 * 10**10])), 0, 0
    )
    assert fee is not None
    assert fee.payload == m.CurveFeeUpdate(fee=4_000_000, offpeg_fee_multiplier=2 * 10**10)
    message = fee.message(9, 10, is_revert=False)
    assert message is not None and message.protocol is m.Protocol.CURVE_STABLE
    # wrong shapes: a missing indexed topic, data not in words, a short fixed layout
    assert (
        decode_log(_log(POOL, [CURVE_EXCHANGE], encode(["uint256"] * 4, [0, 1, 1, 1])), 0, 0)
        is None
    )
    assert decode_log(_log(POOL, [CURVE_ADD, buyer], b"\x00" * 33), 0, 0) is None
    assert decode_log(_log(POOL, [CURVE_NEW_FEE], encode(["uint256"], [1])), 0, 0) is None
