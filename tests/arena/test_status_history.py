"""The per-block status history: in block order by insertion, pruned from the front.

Applied blocks ascend and a revert removes the tip, so the history never needs a search
to find its oldest entry. Every block here revives a stale V2 pool, so every block has
an entry: the history must then hold exactly the blocks whose pre-images the ring and
the spill hold, in order, whatever the mix of applies and reverts.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.engine import ArenaEngine, PoolStatus
from arena.pool_status import StaleReason, StatusHistory, StatusHistoryEntry
from arena.spill import RocksSpill
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.arena.test_engine_status import V2, sync_block

RING_DEPTH = 3
SPILL_DEPTH = 4


def entry(block: int) -> StatusHistoryEntry:
    return np.array([block], dtype=np.int64), np.array([PoolStatus.STALE], dtype=np.uint8)


def test_keep_newest_drops_the_oldest_and_a_failed_step_is_undone() -> None:
    h = StatusHistory()
    for block in (10, 11, 12, 13):
        h.push(block, entry(block), [])
    h.keep_newest(2)
    assert h.blocks() == [12, 13]
    undo: list[Callable[[], object]] = []
    h.pop(13, undo)
    h.push(13, entry(13), undo)
    h.pop(13, undo)
    assert h.blocks() == [12]
    for step in reversed(undo):
        step()
    assert h.blocks() == [12, 13]
    assert h.get(13) is not None and int(h.get(13)[0][0]) == 13


def history(engine: ArenaEngine) -> list[int]:
    return engine._status_before.blocks()


def held_blocks(engine: ArenaEngine) -> list[int]:
    spill = engine.ring.spill
    return (spill.blocks() if spill is not None else []) + engine.ring.blocks()


def build(spill: RocksSpill | None) -> tuple[ArenaEngine, int]:
    engine = ArenaEngine(ring_depth=RING_DEPTH, spill=spill)
    token = Token(address=bytes(20), decimals=18)
    pool = WhitelistedPool(
        key=V2.value, address=V2.value, protocol=m.Protocol.UNISWAP_V2, token0=token, token1=token
    )
    (v2,) = engine.add_pools([pool])
    engine.set_reserves(v2, 1, 2)
    engine.mark_synced(100, keep_history=False)
    return engine, v2


@given(
    ops=st.lists(st.one_of(st.just(0), st.integers(1, 12)), min_size=1, max_size=60),
    with_spill=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_history_holds_exactly_the_blocks_held_in_block_order(
    ops: list[int], *, with_spill: bool
) -> None:
    """`0` applies a block (the pool stale before it), `k` reverts k blocks."""
    with tempfile.TemporaryDirectory(prefix="arena-status-history-") as tmp:
        spill = RocksSpill(Path(tmp) / "spill", SPILL_DEPTH) if with_spill else None
        engine, v2 = build(spill)
        bound = RING_DEPTH + (SPILL_DEPTH if with_spill else 0)
        try:
            for op in ops:
                for _ in range(op if op else 1):
                    tip = engine.tip_block
                    assert tip is not None
                    if op == 0:
                        engine.mark_stale(v2, StaleReason.STALE_IN_LOADED_STATE)
                        engine.apply_block(*sync_block(tip + 1, tip, tip))
                        assert engine.status[v2] == PoolStatus.LIVE
                        continue
                    begin, events = sync_block(tip, 0, 0)
                    held = tip in held_blocks(engine)
                    engine.revert_block(msgspec.structs.replace(begin, is_revert=True), events)
                    # stale before the block, by its status pre-image or as too deep
                    assert engine.status[v2] == PoolStatus.STALE, held
                blocks = history(engine)
                assert blocks == sorted(blocks)
                assert len(blocks) <= bound
                assert blocks == held_blocks(engine)
        finally:
            if spill is not None:
                spill.close()
