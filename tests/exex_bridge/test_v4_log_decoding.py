"""The PoolManager's Swap and ModifyLiquidity logs become the producer's V4 updates."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge import messages as m
from exex_bridge.producers.log_decoding import (
    V4_MODIFY_LIQUIDITY,
    V4_SWAP,
    EventKind,
    decode_block_logs,
    decode_log,
)

MANAGER = bytes(range(20))
ticks = st.integers(-887272, 887272)
pool_ids = st.binary(min_size=32, max_size=32)
I128_MAX = 2**127 - 1


def _log(topics: list[bytes], data: bytes, tx: int = 0, index: int = 0) -> Any:
    return {
        "address": "0x" + MANAGER.hex(),
        "topics": ["0x" + t.hex() for t in topics],
        "data": "0x" + data.hex(),
        "transactionIndex": hex(tx),
        "logIndex": hex(index),
    }


def _sender() -> bytes:
    return encode(["address"], [b"\x07" * 20])


def _swap(pool_id: bytes, sqrt: int, liquidity: int, tick: int) -> Any:
    types = ["int128", "int128", "uint160", "uint128", "int24", "uint24"]
    data = encode(types, [-5, 9, sqrt, liquidity, tick, 3000])
    return _log([V4_SWAP, pool_id, _sender()], data)


def _modify(pool_id: bytes, lower: int, upper: int, delta: int) -> Any:
    data = encode(["int24", "int24", "int256", "bytes32"], [lower, upper, delta, b"\x01" * 32])
    return _log([V4_MODIFY_LIQUIDITY, pool_id, _sender()], data)


@given(
    pool_id=pool_ids,
    sqrt=st.integers(0, 2**160 - 1),
    liquidity=st.integers(0, 2**128 - 1),
    tick=ticks,
)
def test_swap_is_keyed_by_pool_id_and_carries_the_post_swap_state(
    pool_id: bytes, sqrt: int, liquidity: int, tick: int
) -> None:
    decoded = decode_log(_swap(pool_id, sqrt, liquidity, tick), 2, 1, frozenset({pool_id}))
    assert decoded is not None and decoded.kind is EventKind.V4_SWAP
    message = decoded.message(10, 20, is_revert=False)
    assert message is not None
    assert message.pool_id == m.V4PoolId(value=pool_id)
    assert message.protocol is m.Protocol.UNISWAP_V4 and message.update_type is m.UpdateType.SWAP
    assert message.update == m.V4Swap(sqrt_price_x96=sqrt, liquidity=liquidity, tick=tick)


@given(pool_id=pool_ids, lower=ticks, upper=ticks, delta=st.integers(-(2**255), 2**255 - 1))
def test_modify_liquidity_is_a_signed_delta_mint_only_when_positive(
    pool_id: bytes, lower: int, upper: int, delta: int
) -> None:
    decoded = decode_log(_modify(pool_id, lower, upper, delta), 0, 0, frozenset({pool_id}))
    assert decoded is not None and decoded.kind is EventKind.V4_MODIFY
    # The producer saturates the int256 delta to i128 (± i128::MAX).
    assert decoded.payload == m.V4Liquidity(
        tick_lower=lower, tick_upper=upper, liquidity_delta=max(-I128_MAX, min(I128_MAX, delta))
    )
    kind = m.UpdateType.MINT if delta > 0 else m.UpdateType.BURN  # zero is a burn
    assert decoded.update_type is kind


def test_untracked_pool_ids_and_wrong_shapes_give_nothing() -> None:
    pid, other = b"\x01" * 32, b"\x02" * 32
    assert decode_log(_swap(pid, 1, 1, 0), 0, 0, frozenset({other})) is None
    short = _swap(pid, 1, 1, 0)
    short["data"] = short["data"][:-64]
    assert decode_log(short, 0, 0, None) is None
    # The manager's address is not a pool key: tracking it selects nothing.
    assert decode_log(_swap(pid, 1, 1, 0), 0, 0, frozenset({MANAGER})) is None


def test_block_order_and_receipt_local_indexes() -> None:
    pid = b"\x03" * 32
    logs = [_modify(pid, -60, 60, 0), _swap(pid, 2**96, 5, 0)]
    logs[0]["logIndex"], logs[1]["logIndex"] = "0x4", "0x5"
    logs[0]["transactionIndex"], logs[1]["transactionIndex"] = "0x1", "0x1"
    decoded = decode_block_logs(logs, frozenset({pid}))
    assert [(d.kind, d.tx_index, d.log_index) for d in decoded] == [
        (EventKind.V4_MODIFY, 1, 0),
        (EventKind.V4_SWAP, 1, 1),
    ]
    assert decoded[0].update_type is m.UpdateType.BURN
