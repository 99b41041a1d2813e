"""`classify`: which of a block's updates change modelled state, and how many of those are
multi-coin updates (the count that lets the multi-coin staging skip most blocks).

Blocks mix updates for registered pools of every kind, for unknown pools, and of the
wrong kind for a pool; the property is checked against a plain re-derivation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from arena.block_events import COIN_UPDATES, KIND_OF_UPDATE, classify
from arena.registry import COIN_POOL_KINDS, PoolKind
from exex_bridge import messages as m
from tests.arena.stream_builder import ChainBlock, ChainUpdate, address, event_of

PAYLOADS: list[m.PoolUpdatePayload] = [
    m.V2Sync(reserve0=1, reserve1=2),
    m.V3Swap(sqrt_price_x96=1 << 96, liquidity=5, tick=0),
    m.V3Liquidity(tick_lower=-60, tick_upper=60, liquidity_delta=7),
    m.V4Swap(sqrt_price_x96=1 << 96, liquidity=5, tick=0),
    m.CurveFeeUpdate(fee=4_000_000, offpeg_fee_multiplier=20_000_000_000),
    m.CurveRampA(initial_a=100, future_a=200, initial_a_time=1, future_a_time=2),
    m.BalancerSwap(token_in=b"\x01" * 20, token_out=b"\x02" * 20, amount_in=3, amount_out=2),
    m.BalancerFeeUpdate(swap_fee_percentage=10**15),
]
KINDS = [PoolKind.V2, PoolKind.V3, PoolKind.V4, PoolKind.CURVE_STABLE, PoolKind.BALANCER_WEIGHTED]
POOLS = 12  # pool n (1..POOLS) has kind KINDS[n % len(KINDS)]; 0 and above POOLS are unknown


def _event(pool: int, payload: m.PoolUpdatePayload) -> m.PoolUpdateMessage:
    update = ChainUpdate(address(pool), m.Protocol.UNISWAP_V2, m.UpdateType.SWAP, payload, 0, 0)
    return event_of(ChainBlock(1, 0, 1, (update,)), update, is_revert=False)


LOOKUP = {address(n).value: (n, int(KINDS[n % len(KINDS)])) for n in range(1, POOLS + 1)}

updates = st.lists(st.tuples(st.integers(0, POOLS + 3), st.sampled_from(PAYLOADS)), max_size=60)


@given(block=updates)
def test_classify_keeps_updates_of_the_pools_kind_and_counts_the_multi_coin_ones(
    block: list[tuple[int, m.PoolUpdatePayload]],
) -> None:
    found = classify([_event(pool, p) for pool, p in block], LOOKUP)
    kept = [
        (pool, p)
        for pool, p in block
        if address(pool).value in LOOKUP
        and KIND_OF_UPDATE[p.__class__] == LOOKUP[address(pool).value][1]
    ]
    assert list(zip(found.indices, found.payloads, strict=True)) == kept
    assert found.coin_updates == sum(1 for _, p in kept if p.__class__ in COIN_UPDATES)
    assert sum(found.seen.values()) == len(block)
    assert sum(found.skipped.values()) == len(block) - len(kept)


def test_the_multi_coin_classes_are_those_of_the_multi_coin_kinds() -> None:
    assert {
        m.CurveLiquidity,
        m.CurveRampA,
        m.CurveFeeUpdate,
        m.BalancerSwap,
        m.BalancerLiquidity,
        m.BalancerFeeUpdate,
    } == COIN_UPDATES
    assert {KIND_OF_UPDATE[cls] for cls in COIN_UPDATES} == COIN_POOL_KINDS
