"""Pool status (UNKNOWN / LIVE / STALE) transitions and the gauges that report them.

`arena_pools_stale` must equal the number of STALE pools after every transition, and
`arena_ring_blocks` the blocks the ring holds: dashboards and alerts read them.
"""

from __future__ import annotations

import msgspec

from arena.engine import ArenaEngine, PoolStatus
from arena.pool_status import StaleReason
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.arena.stream_builder import ChainBlock, ChainUpdate, StreamBuilder, address, event_of

V2 = address(0x22)
V3 = address(0x33)


def engine_with_pools() -> tuple[ArenaEngine, int, int]:
    engine = ArenaEngine(ring_depth=4)
    token = Token(address=bytes(20), decimals=18)
    v2, v3 = engine.add_pools(
        WhitelistedPool(key=k.value, address=k.value, protocol=p, token0=token, token1=token)
        for k, p in ((V2, m.Protocol.UNISWAP_V2), (V3, m.Protocol.UNISWAP_V3))
    )
    return engine, v2, v3


def sync_block(number: int, r0: int, r1: int) -> tuple[m.BeginBlock, list[m.PoolUpdateMessage]]:
    update = ChainUpdate(
        V2, m.Protocol.UNISWAP_V2, m.UpdateType.SWAP, m.V2Sync(reserve0=r0, reserve1=r1), 0, 0
    )
    block = ChainBlock(number, 0, 1, (update,))
    return StreamBuilder().begin(block), [event_of(block, update, is_revert=False)]


def stale_gauge(engine: ArenaEngine) -> float:
    return engine.metrics.registry.get_sample_value("arena_pools_stale") or 0.0


def test_v2_pool_is_live_from_its_first_sync_and_unknown_again_when_it_is_reverted() -> None:
    engine, v2, v3 = engine_with_pools()
    engine.mark_synced(100, keep_history=False)
    assert engine.status[v2] == PoolStatus.UNKNOWN and engine.status[v3] == PoolStatus.UNKNOWN
    begin, events = sync_block(101, 5, 6)
    engine.apply_block(begin, events)
    assert engine.status[v2] == PoolStatus.LIVE
    engine.revert_block(msgspec.structs.replace(begin, is_revert=True), events)
    assert engine.status[v2] == PoolStatus.UNKNOWN
    assert engine.table.reserves(v2) == (0, 0)
    assert stale_gauge(engine) == engine.stale_count() == 0


def test_reverting_the_live_making_block_beyond_history_keeps_the_stale_gauge_true() -> None:
    """The revert finds no pre-image (history dropped by a resync): the pool's state before
    the block is not known, so it is stale (not UNKNOWN: that needs the pre-image's status),
    and the gauge counts it exactly once."""
    engine, v2, _ = engine_with_pools()
    engine.mark_synced(100, keep_history=False)
    begin, events = sync_block(101, 5, 6)
    engine.apply_block(begin, events)
    engine.mark_synced(101, keep_history=False)
    engine.revert_block(msgspec.structs.replace(begin, is_revert=True), events)
    assert engine.status[v2] == PoolStatus.STALE
    assert stale_gauge(engine) == engine.stale_count() == 1


def test_a_pre_image_taken_while_stale_restores_stale() -> None:
    """A stale pool touched by block N, then revived by an epilogue final: reverting N
    restores the record from before N, which was not trustworthy, so the pool is stale."""
    engine, v2, _ = engine_with_pools()
    engine.set_reserves(v2, 1, 2)
    engine.mark_synced(100, keep_history=False)
    engine.mark_stale(v2, StaleReason.STALE_IN_LOADED_STATE)
    begin, events = sync_block(101, 5, 6)
    engine.apply_block(begin, events)
    assert engine.status[v2] == PoolStatus.LIVE  # a Sync is a V2 pool's whole state
    engine.apply_final(
        m.V2ReservesFinal(
            pool_id=m.PoolAddress(value=engine.registry.pools[v2].key), reserve0=7, reserve1=8
        )
    )
    engine.revert_block(msgspec.structs.replace(begin, is_revert=True), events)
    assert engine.table.reserves(v2) == (1, 2)
    assert engine.status[v2] == PoolStatus.STALE
    assert stale_gauge(engine) == engine.stale_count() == 1


def test_resync_of_a_stale_pool_clears_it_from_the_gauge() -> None:
    engine, v2, v3 = engine_with_pools()
    engine.set_reserves(v2, 1, 2)
    engine.set_slot0(v3, 2**96, 10, 0, ticks={})
    engine.mark_synced(100, keep_history=False)
    engine.mark_stale(v2, StaleReason.STALE_IN_LOADED_STATE)
    engine.mark_stale(v3, StaleReason.STALE_IN_LOADED_STATE)
    assert stale_gauge(engine) == 2
    engine.set_reserves(v2, 3, 4)
    assert engine.status[v2] == PoolStatus.LIVE
    assert stale_gauge(engine) == engine.stale_count() == 1
    engine.set_slot0(v3, 2**96, 10, 0)  # without ticks: not a hydration, stays stale
    assert stale_gauge(engine) == engine.stale_count() == 1
    engine.set_slot0(v3, 2**96, 10, 0, ticks={-10: (10, 10), 10: (-10, 10)})
    assert stale_gauge(engine) == engine.stale_count() == 0


def test_dropping_history_resets_the_ring_gauge() -> None:
    engine, _, _ = engine_with_pools()
    engine.mark_synced(100, keep_history=False)
    for number in (101, 102):
        engine.apply_block(*sync_block(number, number, number))
    ring_gauge = "arena_ring_blocks"
    assert engine.metrics.registry.get_sample_value(ring_gauge) == 2
    engine.mark_synced(102, keep_history=False)
    assert len(engine.ring) == 0
    assert engine.metrics.registry.get_sample_value(ring_gauge) == 0
