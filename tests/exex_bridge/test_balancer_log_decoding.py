"""Decoding the Balancer Vault's and pools' logs into the producer's Balancer updates."""

from __future__ import annotations

from eth_abi.abi import encode
from hypothesis import given
from hypothesis import strategies as st

from exex_bridge import messages as m
from exex_bridge.producers.log_decoding import (
    BALANCER_BALANCE_CHANGED,
    BALANCER_FEE_CHANGED,
    BALANCER_SWAP,
    MAINNET_BALANCER_VAULT,
    EventKind,
    decode_log,
)
from tests.exex_bridge.test_log_decoding import _address, _log, _word

VAULT = bytes.fromhex("ba12222222228d8ba445958a75a0704d566bf2c8")
POOL = bytes(range(20))
POOL_ID = POOL + bytes(range(12))
I128_MAX = 2**127 - 1
u256 = st.integers(0, 2**256 - 1)
i256 = st.integers(-(2**255), 2**255 - 1)


def test_the_mainnet_vault_is_the_default() -> None:
    assert MAINNET_BALANCER_VAULT == VAULT


@given(amount_in=u256, amount_out=u256)
def test_a_vault_swap_becomes_a_balancer_swap_keyed_by_pool_id(
    amount_in: int, amount_out: int
) -> None:
    topics = [BALANCER_SWAP, POOL_ID, _address(0xA), _address(0xB)]
    data = _word(amount_in) + _word(amount_out)
    decoded = decode_log(_log(VAULT, topics, data), 2, 5)
    assert decoded is not None and decoded.kind is EventKind.BALANCER_SWAP
    message = decoded.message(7, 8, is_revert=False)
    assert message is not None
    assert message.pool_id == m.V4PoolId(value=POOL_ID)
    assert message.protocol is m.Protocol.BALANCER_V2_WEIGHTED
    assert message.update_type is m.UpdateType.SWAP
    assert message.update == m.BalancerSwap(
        token_in=(0xA).to_bytes(20, "big"),
        token_out=(0xB).to_bytes(20, "big"),
        amount_in=amount_in,
        amount_out=amount_out,
    )
    # only the Vault's events count, and only for tracked pool ids when a filter is given
    assert decode_log(_log(POOL, topics, data), 0, 0) is None
    assert decode_log(_log(VAULT, topics, data), 0, 0, frozenset({POOL})) is None
    assert decode_log(_log(VAULT, topics, data), 0, 0, frozenset({POOL_ID})) is not None


@given(deltas=st.lists(i256, min_size=1, max_size=8), fees=st.lists(u256, min_size=0, max_size=8))
def test_a_balance_change_becomes_clamped_deltas_without_protocol_fees(
    deltas: list[int], fees: list[int]
) -> None:
    tokens = [(0x100 + k).to_bytes(20, "big") for k in range(len(deltas))]
    data = encode(["address[]", "int256[]", "uint256[]"], [tokens, deltas, fees])
    topics = [BALANCER_BALANCE_CHANGED, POOL_ID, _address(0xC)]
    decoded = decode_log(_log(VAULT, topics, data), 0, 1)
    assert decoded is not None and decoded.kind is EventKind.BALANCER_LIQUIDITY
    assert decoded.update_type is m.UpdateType.MINT
    assert decoded.payload == m.BalancerLiquidity(
        tokens=tuple(tokens), deltas=tuple(max(-I128_MAX, min(I128_MAX, d)) for d in deltas)
    )


def test_a_fee_change_needs_the_chain_read_before_it_is_a_message() -> None:
    decoded = decode_log(_log(POOL, [BALANCER_FEE_CHANGED], _word(10**16)), 0, 0)
    assert decoded is not None and decoded.kind is EventKind.BALANCER_FEE
    assert decoded.message(1, 1, is_revert=False) is None
    resolved = decoded.with_fee(POOL_ID, 25 * 10**14)
    message = resolved.message(1, 1, is_revert=True)
    assert message is not None and message.pool_id == m.V4PoolId(value=POOL_ID)
    assert message.update == m.BalancerFeeUpdate(swap_fee_percentage=25 * 10**14)
    assert decode_log(_log(POOL, [BALANCER_FEE_CHANGED, POOL_ID], _word(1)), 0, 0) is None
