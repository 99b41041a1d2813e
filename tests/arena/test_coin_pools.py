"""Multi-coin pool state (Curve StableSwap-NG) through the engine's blocks and reverts.

Curve pools are hydrated into a real `ArenaEngine`, random blocks of the stream's Curve
updates (CurveLiquidity, CurveRampA, CurveFeeUpdate, some with a wrong coin count, some
for a pool that was never hydrated) are applied as the producer sends them (through the
codec), and then reverted newest first. After every block the state must be the fold of
the updates (the last absolute values win); after every revert it must be exactly the
state before that block, statuses included. A block made to fail leaves it unchanged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.coin_pools import CoinPoolState, CoinPoolStore, CurveParams, WeightedParams
from arena.engine import ArenaEngine, PoolStatus
from arena.pool_status import StaleReason
from arena.resume import capture_checkpoint, restore_checkpoint
from arena.snapshot_ring import SnapshotRing
from arena.state_file import export_state, load_state
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.arena.stream_builder import ChainBlock, ChainUpdate, address, block_events, through_wire

START = 1_000
COINS = [(0x501, 2), (0x502, 3), (0x503, 4)]  # hydrated pools: address, coin count
UNHYDRATED = 0x5FF


def whitelisted(n: int) -> WhitelistedPool:
    key = address(n).value
    return WhitelistedPool(
        key=key,
        address=key,
        protocol=m.Protocol.CURVE_STABLE,
        token0=Token(address=bytes(19) + b"\x0a", decimals=18),
        token1=Token(address=bytes(19) + b"\x0b", decimals=6),
    )


def hydrated(n_coins: int, rng: random.Random) -> CoinPoolState:
    return CoinPoolState(
        coins=tuple(bytes(19) + bytes([0x10 + k]) for k in range(n_coins)),
        balances=tuple(rng.randrange(10**6, 10**27) for _ in range(n_coins)),
        params=CurveParams(
            rates=tuple(10 ** (36 - 18) for _ in range(n_coins)),
            fee=4_000_000,
            offpeg_fee_multiplier=20_000_000_000,
            initial_a=10_000,
            future_a=10_000,
            initial_a_time=0,
            future_a_time=0,
        ),
    )


def engine_with_pools(seed: int, ring_depth: int = 16) -> ArenaEngine:
    rng = random.Random(seed)
    engine = ArenaEngine(ring_depth=ring_depth)
    engine.add_pools([whitelisted(n) for n, _ in COINS] + [whitelisted(UNHYDRATED)])
    for n, count in COINS:
        engine.set_coin_state(engine.registry.index_of[address(n).value], hydrated(count, rng))
    engine.mark_synced(START, keep_history=False)
    return engine


def curve_update(
    rng: random.Random, n: int, count: int, *, wrong_counts: bool = False
) -> m.PoolUpdatePayload:
    roll = rng.random()
    if roll < 0.6:
        size = count + 1 if wrong_counts and rng.random() < 0.1 else count
        return m.CurveLiquidity(
            effective_balances=tuple(rng.randrange(0, 2**128) for _ in range(size)),
            fee=rng.randrange(0, 10**8),
            offpeg_fee_multiplier=rng.randrange(10**10, 10**11),
            initial_a=rng.randrange(1, 10**6),
            future_a=rng.randrange(1, 10**6),
            initial_a_time=rng.randrange(0, 2**40),
            future_a_time=rng.randrange(0, 2**40),
        )
    if roll < 0.8:
        return m.CurveRampA(
            initial_a=rng.randrange(1, 10**6),
            future_a=rng.randrange(1, 10**6),
            initial_a_time=rng.randrange(0, 2**40),
            future_a_time=rng.randrange(0, 2**40),
        )
    return m.CurveFeeUpdate(
        fee=rng.randrange(0, 10**8), offpeg_fee_multiplier=rng.randrange(10**10, 10**11)
    )


def random_block(rng: random.Random, number: int, *, wrong_counts: bool = False) -> ChainBlock:
    pools = [*COINS, (UNHYDRATED, 2)]
    updates = []
    for log_index in range(rng.randrange(0, 6)):
        n, count = rng.choice(pools)
        payload = wired(curve_update(rng, n, count, wrong_counts=wrong_counts))
        updates.append(
            ChainUpdate(
                pool_id=address(n),
                protocol=m.Protocol.CURVE_STABLE,
                update_type=m.UpdateType.SWAP,
                payload=payload,
                tx_index=0,
                log_index=log_index,
            )
        )
    return ChainBlock(
        number=number,
        timestamp=1_800_000_000 + number * 12,
        base_fee_per_gas=1,
        updates=tuple(updates),
    )


def wired(payload: m.PoolUpdatePayload) -> m.PoolUpdatePayload:
    """The payload as the arena reads it off the socket (through the codec)."""
    event = m.PoolUpdateMessage(
        pool_id=address(1),
        protocol=m.Protocol.CURVE_STABLE,
        update_type=m.UpdateType.SWAP,
        block_number=1,
        block_timestamp=1,
        tx_index=0,
        log_index=0,
        is_revert=False,
        update=payload,
    )
    return through_wire(m.PoolUpdate(stream_seq=1, event=event)).event.update


def begin(block: ChainBlock, *, is_revert: bool) -> m.BeginBlock:
    return m.BeginBlock(
        stream_seq=1,
        block_number=block.number,
        block_timestamp=block.timestamp,
        base_fee_per_gas=block.base_fee_per_gas,
        is_revert=is_revert,
    )


@dataclass(frozen=True)
class Snapshot:
    states: dict[int, CoinPoolState]
    status: list[int]
    tip: int | None
    clock: int


def snapshot(engine: ArenaEngine) -> Snapshot:
    n = len(engine.registry)
    return Snapshot(
        dict(engine.coins.states()),
        engine.status[:n].tolist(),
        engine.tip_block,
        engine.coins.clock,
    )


def expected_after(
    before: dict[int, CoinPoolState], engine: ArenaEngine, block: ChainBlock
) -> dict[int, CoinPoolState]:
    """The reference fold: absolute values, applied in order, last wins; an update of a
    pool without state, or with another coin count, changes nothing."""
    out = dict(before)
    for u in block.updates:
        index = engine.registry.index_of[u.pool_id.value]
        state = out.get(index)
        if state is None:
            continue
        assert isinstance(state.params, CurveParams)
        p, params = u.payload, state.params
        if isinstance(p, m.CurveLiquidity):
            if len(p.effective_balances) != len(state.balances):
                continue
            params = CurveParams(
                rates=params.rates,
                fee=p.fee,
                offpeg_fee_multiplier=p.offpeg_fee_multiplier,
                initial_a=p.initial_a,
                future_a=p.future_a,
                initial_a_time=p.initial_a_time,
                future_a_time=p.future_a_time,
            )
            out[index] = CoinPoolState(
                coins=state.coins, balances=p.effective_balances, params=params
            )
        elif isinstance(p, m.CurveRampA):
            params = CurveParams(
                rates=params.rates,
                fee=params.fee,
                offpeg_fee_multiplier=params.offpeg_fee_multiplier,
                initial_a=p.initial_a,
                future_a=p.future_a,
                initial_a_time=p.initial_a_time,
                future_a_time=p.future_a_time,
            )
            out[index] = CoinPoolState(coins=state.coins, balances=state.balances, params=params)
        elif isinstance(p, m.CurveFeeUpdate):
            params = CurveParams(
                rates=params.rates,
                fee=p.fee,
                offpeg_fee_multiplier=p.offpeg_fee_multiplier,
                initial_a=params.initial_a,
                future_a=params.future_a,
                initial_a_time=params.initial_a_time,
                future_a_time=params.future_a_time,
            )
            out[index] = CoinPoolState(coins=state.coins, balances=state.balances, params=params)
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), blocks=st.integers(1, 12), wrong_counts=st.booleans())
def test_apply_then_revert_restores_every_state_exactly(
    seed: int, blocks: int, wrong_counts: bool
) -> None:
    """With refused updates (a wrong coin count) the states still revert exactly; the
    pools they made stale stay stale (a stale mark is only lifted by a whole state)."""
    rng = random.Random(seed)
    engine = engine_with_pools(seed)
    history = []
    for k in range(blocks):
        block = random_block(rng, START + 1 + k, wrong_counts=wrong_counts)
        before = snapshot(engine)
        history.append((block, before))
        engine.apply_block(begin(block, is_revert=False), block_events(block))
        assert dict(engine.coins.states()) == expected_after(before.states, engine, block)
        assert engine.coins.clock == block.timestamp
    unhydrated = engine.registry.index_of[address(UNHYDRATED).value]
    assert unhydrated not in engine.coins
    assert engine.status[unhydrated] == PoolStatus.UNKNOWN
    for block, before in reversed(history):
        engine.revert_block(begin(block, is_revert=True), block_events(block, is_revert=True))
        after = snapshot(engine)
        assert after.states == before.states
        assert after.tip == before.tip
        assert after.clock == before.clock
        if wrong_counts:
            sticky = [
                b if b == a or a != PoolStatus.STALE else a
                for a, b in zip(after.status, before.status, strict=True)
            ]
            assert after.status == sticky
        else:
            assert after.status == before.status


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_wrong_coin_count_makes_the_pool_stale_and_a_whole_state_revives_it(seed: int) -> None:
    rng = random.Random(seed)
    engine = engine_with_pools(seed)
    n, count = COINS[1]
    index = engine.registry.index_of[address(n).value]
    before = engine.coins.state(index)

    def one(number: int, size: int) -> ChainBlock:
        payload = m.CurveLiquidity(
            effective_balances=tuple(rng.randrange(1, 2**100) for _ in range(size)),
            fee=1,
            offpeg_fee_multiplier=10**10,
            initial_a=100,
            future_a=100,
            initial_a_time=0,
            future_a_time=0,
        )
        update = ChainUpdate(
            address(n), m.Protocol.CURVE_STABLE, m.UpdateType.MINT, wired(payload), 0, 0
        )
        return ChainBlock(number, 1_800_000_000, 1, (update,))

    bad = one(START + 1, count + 1)
    engine.apply_block(begin(bad, is_revert=False), block_events(bad))
    assert engine.status[index] == PoolStatus.STALE
    assert engine.coins.state(index) == before
    assert engine.metrics.stale_marked.labels(reason="coin_count_mismatch")._value.get() == 1
    good = one(START + 2, count)
    engine.apply_block(begin(good, is_revert=False), block_events(good))
    assert engine.status[index] == PoolStatus.LIVE
    state = engine.coins.state(index)
    assert state is not None
    assert state.balances == good.updates[0].payload.effective_balances  # type: ignore[union-attr]
    engine.revert_block(begin(good, is_revert=True), block_events(good, is_revert=True))
    assert engine.status[index] == PoolStatus.STALE
    assert engine.coins.state(index) == before


class InjectedError(Exception):
    pass


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_failing_block_leaves_multi_coin_state_unchanged(seed: int) -> None:
    rng = random.Random(seed)
    engine = engine_with_pools(seed)
    first = random_block(rng, START + 1)
    engine.apply_block(begin(first, is_revert=False), block_events(first))
    block = random_block(rng, START + 2)
    before = snapshot(engine)

    def fail(*_: object, **__: object) -> None:
        raise InjectedError

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SnapshotRing, "push", fail)
        with pytest.raises(InjectedError):
            engine.apply_block(begin(block, is_revert=False), block_events(block))
    assert snapshot(engine) == before
    assert not engine.coins.journaled(block.number)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SnapshotRing, "take", fail)
        with pytest.raises(InjectedError):
            engine.revert_block(begin(first, is_revert=True), block_events(first, is_revert=True))
    assert snapshot(engine) == before
    assert engine.coins.journaled(first.number)


def test_revert_past_the_journal_makes_the_block_pools_stale() -> None:
    rng = random.Random(7)
    engine = engine_with_pools(7, ring_depth=2)
    blocks = []
    for k in range(4):
        n, count = COINS[0]
        payload = wired(curve_update(random.Random(k), n, count))
        update = ChainUpdate(address(n), m.Protocol.CURVE_STABLE, m.UpdateType.SWAP, payload, 0, 0)
        blocks.append(ChainBlock(START + 1 + k, 1_800_000_000, 1, (update,)))
        engine.apply_block(begin(blocks[-1], is_revert=False), block_events(blocks[-1]))
    del rng
    for block in reversed(blocks[2:]):
        engine.revert_block(begin(block, is_revert=True), block_events(block, is_revert=True))
    index = engine.registry.index_of[address(COINS[0][0]).value]
    assert engine.status[index] == PoolStatus.LIVE
    engine.revert_block(begin(blocks[1], is_revert=True), block_events(blocks[1], is_revert=True))
    assert engine.status[index] == PoolStatus.STALE


def test_checkpoint_restore_marks_multi_coin_pools_stale() -> None:
    engine = engine_with_pools(3)
    checkpoint = capture_checkpoint(engine, stream_seq=None)
    resumed = ArenaEngine()
    resumed.add_pools([whitelisted(n) for n, _ in COINS] + [whitelisted(UNHYDRATED)])
    restore_checkpoint(resumed, checkpoint)
    for n, _ in COINS:
        assert resumed.status[resumed.registry.index_of[address(n).value]] == PoolStatus.STALE
    unhydrated = resumed.registry.index_of[address(UNHYDRATED).value]
    assert resumed.status[unhydrated] == PoolStatus.UNKNOWN
    reason = StaleReason.COIN_STATE_NOT_IN_CHECKPOINT.value
    assert resumed.metrics.stale_marked.labels(reason=reason)._value.get() == len(COINS)


def test_store_refuses_malformed_states() -> None:
    store = CoinPoolStore()
    good = hydrated(3, random.Random(1))
    with pytest.raises(ValueError, match="balances"):
        store.set(0, CoinPoolState(coins=good.coins, balances=(1, 2), params=good.params))
    with pytest.raises(ValueError, match="coins"):
        store.set(0, CoinPoolState(coins=good.coins[:1], balances=(1,), params=good.params))
    weighted = WeightedParams(
        weights=(5 * 10**17,) * 2, scaling_factors=(1,) * 2, swap_fee=3 * 10**15, version=1
    )
    with pytest.raises(ValueError, match="parameters"):
        store.set(0, CoinPoolState(coins=good.coins, balances=good.balances, params=weighted))
    store.set(0, good)
    assert store.state(0) == good


def test_state_files_show_balances_and_load_multi_coin_pools_unhydrated() -> None:
    engine = engine_with_pools(5)
    state = export_state(engine)
    for n, _ in COINS:
        index = engine.registry.index_of[address(n).value]
        coin_state = engine.coins.state(index)
        assert coin_state is not None
        written = state.pools["0x" + address(n).value.hex()]
        assert written.balances == [str(b) for b in coin_state.balances]
        assert written.sqrt_price_x96 is None and written.reserve0 is None
    assert state.unhydrated == ["0x" + address(UNHYDRATED).value.hex()]
    loaded = ArenaEngine()
    loaded.add_pools([whitelisted(n) for n, _ in COINS] + [whitelisted(UNHYDRATED)])
    assert load_state(loaded, state) == 0
    assert not len(loaded.coins)
    assert (loaded.status[: len(loaded.registry)] == PoolStatus.UNKNOWN).all()


def test_every_pool_added_past_the_registry_capacity_is_reported_activated() -> None:
    engine = ArenaEngine(capacity=4)
    pools = [whitelisted(0x7000 + k) for k in range(100)]
    assert engine.add_pools(pools) == list(range(100))


def test_a_revert_below_a_pools_hydration_makes_it_stale() -> None:
    """Its update in the reverted block was ignored (not hydrated yet): the revert has no
    pre-image of it, and the state it holds is of after the block."""
    rng = random.Random(9)
    engine = engine_with_pools(9)
    index = engine.registry.index_of[address(UNHYDRATED).value]

    def block_with(number: int, n: int, count: int) -> ChainBlock:
        payload = wired(curve_update(random.Random(number), n, count))
        update = ChainUpdate(address(n), m.Protocol.CURVE_STABLE, m.UpdateType.SWAP, payload, 0, 0)
        return ChainBlock(number, 1_800_000_000 + number, 1, (update,))

    ignored = block_with(START + 1, UNHYDRATED, 2)
    engine.apply_block(begin(ignored, is_revert=False), block_events(ignored))
    assert engine.metrics.updates_ignored.labels("coin_pool_unhydrated")._value.get() == 1
    engine.set_coin_state(index, hydrated(2, rng))  # hydrated at START + 1
    later = block_with(START + 2, COINS[0][0], COINS[0][1])
    engine.apply_block(begin(later, is_revert=False), block_events(later))
    engine.revert_block(begin(later, is_revert=True), block_events(later, is_revert=True))
    assert engine.status[index] == PoolStatus.LIVE
    engine.revert_block(begin(ignored, is_revert=True), block_events(ignored, is_revert=True))
    assert engine.status[index] == PoolStatus.STALE
    reason = StaleReason.REVERT_WITHOUT_PRE_IMAGE.value
    assert engine.metrics.stale_marked.labels(reason=reason)._value.get() == 1
