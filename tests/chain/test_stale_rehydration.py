"""With --rpc, a pool left stale (no epilogue final reached it) is hydrated again at the
next block boundary, from the real contracts."""

from __future__ import annotations

import pytest

from arena.engine import ArenaEngine, PoolStatus
from arena.pool_status import StaleReason
from arena.registry import PoolKind
from arena.rpc_sync import RpcSync
from devchain.chain_check import compare_with_node
from devchain.whitelist_file import whitelist_json
from exex_bridge import messages as m
from exex_bridge.whitelist import parse_pools_document
from tests.chain.conftest import DevChain

pytestmark = pytest.mark.chain


def test_stale_pools_are_hydrated_at_the_next_block(clean_devchain: DevChain) -> None:
    w3 = clean_devchain.w3
    whitelist = parse_pools_document(whitelist_json(clean_devchain.deployment))
    engine = ArenaEngine()
    engine.add_pools(whitelist.pools)
    sync = RpcSync(engine, w3)
    tip = w3.eth.block_number
    begin = m.BeginBlock(
        stream_seq=1, block_number=tip + 1, block_timestamp=0, base_fee_per_gas=0, is_revert=False
    )
    sync.before_block(begin)  # start-up: everything hydrated at `tip`
    assert sync.resyncs == 1 and engine.synced and engine.tip_block == tip
    assert compare_with_node(engine, w3, tip) == []

    kinds = engine.registry.kind
    v3 = next(i for i in range(len(engine.registry)) if kinds[i] == PoolKind.V3)
    v2 = next(i for i in range(len(engine.registry)) if kinds[i] == PoolKind.V2)
    engine.set_slot0(v3, 1 << 96, 1, 0)  # a wrong record ...
    engine.ticks.set_pool(v3, {})  # ... and a wrong tick map
    engine.set_reserves(v2, 1, 1)
    engine.mark_stale_many([v3, v2], StaleReason.STALE_IN_LOADED_STATE)
    assert compare_with_node(engine, w3, tip) != []

    sync.before_block(begin)  # synced at tip: only the stale pools are hydrated again
    assert (sync.resyncs, sync.hydrations) == (1, 1)
    assert engine.status[v3] == PoolStatus.LIVE and engine.status[v2] == PoolStatus.LIVE
    assert engine.stale_count() == 0
    assert compare_with_node(engine, w3, tip) == []
