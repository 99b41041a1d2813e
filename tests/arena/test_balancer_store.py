"""Balancer weighted pools in the engine's multi-coin store: deltas applied, reverted exactly.

Pools of both generations are hydrated into a real `ArenaEngine`; random blocks of the
stream's Balancer updates (BalancerSwap, BalancerLiquidity, BalancerFeeUpdate — through
the codec, keyed by 32-byte pool id) are applied and reverted newest first. After every
block the balances are the sum of the deltas and the fee the last one sent; after every
revert the state is exactly the one before the block. A join/exit of a first-generation
pool leaves it stale (its protocol fees are not in the stream); an update naming a token
the pool does not hold is refused.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from arena.coin_pools import CoinPoolState, WeightedParams
from arena.engine import ArenaEngine, PoolStatus
from arena.pool_status import StaleReason
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.arena.stream_builder import ChainBlock, ChainUpdate, block_events, through_wire

START = 2_000
POOLS = [(0x601, 2, 1), (0x602, 3, 2), (0x603, 4, 2)]  # (n, coins, generation)


def pool_id(n: int) -> bytes:
    return n.to_bytes(20, "big") + bytes(12)


def coin(k: int) -> bytes:
    return bytes(19) + bytes([0x20 + k])


def whitelisted(n: int) -> WhitelistedPool:
    return WhitelistedPool(
        key=pool_id(n),
        address=pool_id(n)[:20],
        protocol=m.Protocol.BALANCER_V2_WEIGHTED,
        token0=Token(address=coin(0), decimals=18),
        token1=Token(address=coin(1), decimals=18),
    )


def hydrated(n_coins: int, generation: int, rng: random.Random) -> CoinPoolState:
    return CoinPoolState(
        coins=tuple(coin(k) for k in range(n_coins)),
        balances=tuple(rng.randrange(10**22, 10**27) for _ in range(n_coins)),
        params=WeightedParams(
            weights=tuple(10**18 // n_coins for _ in range(n_coins)),
            scaling_factors=(10**18,) * n_coins,
            swap_fee=3 * 10**15,
            version=generation,
        ),
    )


def engine_with_pools(seed: int) -> ArenaEngine:
    rng = random.Random(seed)
    engine = ArenaEngine(ring_depth=16)
    engine.add_pools([whitelisted(n) for n, _, _ in POOLS])
    for n, count, generation in POOLS:
        engine.set_coin_state(
            engine.registry.index_of[pool_id(n)], hydrated(count, generation, rng)
        )
    engine.mark_synced(START, keep_history=False)
    return engine


def balancer_update(rng: random.Random, count: int) -> m.PoolUpdatePayload:
    roll = rng.random()
    if roll < 0.6:
        i, j = rng.sample(range(count), 2)
        return m.BalancerSwap(
            token_in=coin(i),
            token_out=coin(j),
            amount_in=rng.randrange(0, 10**19),
            amount_out=rng.randrange(0, 10**19),
        )
    if roll < 0.9:
        return m.BalancerLiquidity(
            tokens=tuple(coin(k) for k in range(count)),
            deltas=tuple(rng.randrange(-(10**19), 10**19) for _ in range(count)),
        )
    return m.BalancerFeeUpdate(swap_fee_percentage=rng.randrange(10**12, 10**17))


def random_block(rng: random.Random, number: int) -> ChainBlock:
    updates = []
    for log_index in range(rng.randrange(0, 6)):
        n, count, _ = rng.choice(POOLS)
        update = ChainUpdate(
            pool_id=m.V4PoolId(value=pool_id(n)),
            protocol=m.Protocol.BALANCER_V2_WEIGHTED,
            update_type=m.UpdateType.SWAP,
            payload=balancer_update(rng, count),
            tx_index=0,
            log_index=log_index,
        )
        updates.append(update)
    block = ChainBlock(
        number=number,
        timestamp=1_800_000_000 + 12 * number,
        base_fee_per_gas=1,
        updates=tuple(updates),
    )
    for event in block_events(block):  # as the arena reads them off the socket
        through_wire(m.PoolUpdate(stream_seq=1, event=event))
    return block


def begin(block: ChainBlock, *, is_revert: bool) -> m.BeginBlock:
    return m.BeginBlock(
        stream_seq=1,
        block_number=block.number,
        block_timestamp=block.timestamp,
        base_fee_per_gas=1,
        is_revert=is_revert,
    )


def fold(
    states: dict[int, CoinPoolState], engine: ArenaEngine, block: ChainBlock
) -> dict[int, CoinPoolState]:
    """The reference: deltas added in order, the last fee wins."""
    out = dict(states)
    for u in block.updates:
        index = engine.registry.index_of[u.pool_id.value]
        state = out[index]
        assert isinstance(state.params, WeightedParams)
        balances = list(state.balances)
        params = state.params
        p = u.payload
        if isinstance(p, m.BalancerSwap):
            balances[state.coins.index(p.token_in)] += p.amount_in
            balances[state.coins.index(p.token_out)] -= p.amount_out
        elif isinstance(p, m.BalancerLiquidity):
            for token, delta in zip(p.tokens, p.deltas, strict=True):
                balances[state.coins.index(token)] += delta
        elif isinstance(p, m.BalancerFeeUpdate):
            params = WeightedParams(
                weights=params.weights,
                scaling_factors=params.scaling_factors,
                swap_fee=p.swap_fee_percentage,
                version=params.version,
            )
        out[index] = CoinPoolState(coins=state.coins, balances=tuple(balances), params=params)
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), blocks=st.integers(1, 12))
def test_apply_then_revert_restores_every_state_exactly(seed: int, blocks: int) -> None:
    rng = random.Random(seed)
    engine = engine_with_pools(seed)
    history = []
    for k in range(blocks):
        block = random_block(rng, START + 1 + k)
        before = dict(engine.coins.states())
        history.append((block, before))
        engine.apply_block(begin(block, is_revert=False), block_events(block))
        assert dict(engine.coins.states()) == fold(before, engine, block)
        for u in block.updates:
            index = engine.registry.index_of[u.pool_id.value]
            generation = next(g for n, _, g in POOLS if pool_id(n) == u.pool_id.value)
            if isinstance(u.payload, m.BalancerLiquidity) and generation == 1:
                assert engine.status[index] == PoolStatus.STALE
    for block, before in reversed(history):
        engine.revert_block(begin(block, is_revert=True), block_events(block, is_revert=True))
        assert dict(engine.coins.states()) == before


def test_a_token_the_pool_does_not_hold_is_refused_and_the_pool_goes_stale() -> None:
    engine = engine_with_pools(3)
    n, _, _ = POOLS[1]
    index = engine.registry.index_of[pool_id(n)]
    before = engine.coins.state(index)
    swap = m.BalancerSwap(token_in=coin(9), token_out=coin(0), amount_in=1, amount_out=1)
    block = ChainBlock(
        number=START + 1,
        timestamp=1,
        base_fee_per_gas=1,
        updates=(
            ChainUpdate(
                pool_id=m.V4PoolId(value=pool_id(n)),
                protocol=m.Protocol.BALANCER_V2_WEIGHTED,
                update_type=m.UpdateType.SWAP,
                payload=swap,
                tx_index=0,
                log_index=0,
            ),
        ),
    )
    engine.apply_block(begin(block, is_revert=False), block_events(block))
    assert engine.coins.state(index) == before
    assert engine.status[index] == PoolStatus.STALE
    labels = engine.metrics.stale_marked.labels(StaleReason.BALANCER_UPDATE_REFUSED.value)
    assert labels._value.get() == 1
