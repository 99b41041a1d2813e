"""The off-loop resync (`BackgroundRpcSync` through the pooled client) hydrates every
protocol exactly as the synchronous path (`arena.resync.resync` over web3) does.

A real anvil per world: Uniswap V2/V3 with V4 on the real PoolManager (read through the
StateView, and through `extsload`), Curve StableSwap-NG (a plain pool, and one whose
rates are not plain: excluded and counted), Balancer V2 weighted pools (and one with a
rate provider: excluded and counted). The stream's first block opens on an unsynced
arena: its frames are held while the node answers on a worker thread, then the pools
are set and the block settles. Every pool's state, status and exclusion then equals
what the synchronous resync of a second arena read at the same block.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import pytest
from web3 import Web3

from arena.background_resync import BackgroundRpcSync
from arena.block_assembler import Settled
from arena.engine import ArenaEngine, PoolStatus
from arena.pipeline import Pipeline
from arena.registry import PoolKind
from arena.resync import resync
from arena.summary import samples_by_label
from devchain import AnvilNode
from devchain.balancer_world import create_rate_provider_pool, deploy_balancer_world
from devchain.curve_pool import deploy_curve_pool
from devchain.whitelist_file import whitelist_json
from exex_bridge.codec import encode_message
from exex_bridge.producers.broadcast import StreamSequencer
from exex_bridge.rpc import BlockingRpc, RpcClient
from exex_bridge.whitelist import WhitelistedPool, parse_pools_document
from tests.chain.conftest import DevChain, V4DevChain
from tests.chain.test_curve_pool import whitelisted as curve_entry

pytestmark = pytest.mark.chain

DEADLINE = 120.0
EXCLUDED = "arena_coin_pools_excluded_total"


def _engine(pools: Sequence[WhitelistedPool]) -> ArenaEngine:
    engine = ArenaEngine(capacity=max(16, 2 * len(pools)))
    engine.add_pools(pools)
    return engine


async def _resync_off_loop(
    pools: Sequence[WhitelistedPool], url: str, block: int, *, state_view: str | None
) -> tuple[ArenaEngine, BackgroundRpcSync]:
    """A pipeline over a fresh arena, fed the frames of an empty block `block + 1`."""
    engine = _engine(pools)
    pipeline = Pipeline(engine)
    client = RpcClient.from_urls(url)
    sync = BackgroundRpcSync(
        pipeline, BlockingRpc(client, asyncio.get_running_loop()), v4_state_view=state_view
    )
    pipeline.subscribe_block_start(sync.before_block)
    settled: list[Settled] = []
    done = asyncio.Event()

    def on_settled(point: Settled) -> None:
        settled.append(point)
        done.set()

    pipeline.subscribe_settled(on_settled)
    frames = [encode_message(msg) for msg in StreamSequencer().block(block + 1, [])]
    try:
        for frame in frames:
            assert pipeline.feed_frame(frame) is None
        assert pipeline.held.holding  # the node has not answered: the block waits
        assert len(pipeline.held.items) == len(frames) - 1
        async with asyncio.timeout(DEADLINE):
            await done.wait()
    finally:
        await client.close()
    assert [(p.block, p.trustworthy) for p in settled] == [(block + 1, True)]
    assert sync.resyncs == 1 and sync.failures == 0
    return engine, sync


def _pool_states(engine: ArenaEngine) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for index in range(len(engine.registry)):
        kind = engine.registry.kind_of(index)
        status = PoolStatus(int(engine.status[index]))
        held: object = None
        if status is PoolStatus.LIVE and kind is PoolKind.V2:
            held = engine.table.reserves(index)
        elif status is PoolStatus.LIVE and kind in (PoolKind.V3, PoolKind.V4):
            held = (engine.table.slot0(index), dict(engine.ticks.ticks(index)))
        coins = (engine.coins.state(index), engine.coins.exclusion(index))
        out.append((engine.registry.pools[index].key, kind, status, held, coins))
    return out


async def _assert_same_as_synchronous(
    pools: Sequence[WhitelistedPool],
    w3: Web3,
    url: str,
    *,
    state_view: str | None = None,
) -> tuple[ArenaEngine, list[tuple[object, ...]]]:
    block = int(w3.eth.block_number)
    background, sync = await _resync_off_loop(pools, url, block, state_view=state_view)
    reference = _engine(pools)
    expected = await asyncio.to_thread(resync, reference, w3, block, v4_state_view=state_view)
    states = _pool_states(background)
    assert states == _pool_states(reference)
    report = sync.last_report
    assert report is not None and report.block == block
    assert (report.pools, report.not_hydratable) == (expected.pools, expected.not_hydratable)
    excluded = samples_by_label(background.metrics.registry, EXCLUDED, "reason")
    assert excluded == samples_by_label(reference.metrics.registry, EXCLUDED, "reason")
    return background, states


@pytest.mark.parametrize("reader", ["state_view", "extsload"])
async def test_v4_pools_hydrate_off_the_loop_like_the_synchronous_resync(
    clean_v4_devchain: V4DevChain, reader: str
) -> None:
    chain, v4 = clean_v4_devchain.chain, clean_v4_devchain.v4
    pools = parse_pools_document(whitelist_json(chain.deployment, v4=v4)).pools
    view = v4.state_view if reader == "state_view" else None
    engine, states = await _assert_same_as_synchronous(
        pools, chain.w3, chain.node.url, state_view=view
    )
    live_v4 = [s for s in states if s[1] is PoolKind.V4 and s[2] is PoolStatus.LIVE]
    assert len(live_v4) == len(v4.pools)
    assert any(s[3][1] for s in live_v4)  # type: ignore[index]  # tick maps were read
    assert engine.synced and engine.stale_count() == 0


async def test_curve_pools_hydrate_off_the_loop_and_odd_rates_are_excluded(
    clean_devchain: DevChain,
) -> None:
    w3 = clean_devchain.w3
    sender = w3.eth.accounts[0]
    plain = deploy_curve_pool(
        w3,
        sender,
        decimals=(18, 6, 8),
        amp=200,
        fee=4_000_000,
        offpeg_fee_multiplier=20_000_000_000,
        liquidity=(3 * 10**24, 2 * 10**12, 25 * 10**14),
    )
    odd = deploy_curve_pool(
        w3,
        sender,
        decimals=(18, 18),
        amp=100,
        fee=4_000_000,
        offpeg_fee_multiplier=20_000_000_000,
        liquidity=(10**24, 10**24),
        rates=(10**18, 2 * 10**18),
    )
    pools = [curve_entry(plain), curve_entry(odd)]
    engine, states = await _assert_same_as_synchronous(pools, w3, clean_devchain.node.url)
    assert states[0][2] is PoolStatus.LIVE and states[0][4][0] is not None  # type: ignore[index]
    assert states[1][2] is PoolStatus.UNKNOWN
    assert states[1][4] == (None, "rates_not_plain")
    excluded = samples_by_label(engine.metrics.registry, EXCLUDED, "reason")
    assert excluded == {"rates_not_plain": 1.0}


async def test_balancer_pools_hydrate_off_the_loop_and_rate_providers_are_excluded() -> None:
    with AnvilNode() as node:
        world = await asyncio.to_thread(deploy_balancer_world, node.web3())
        rated = await asyncio.to_thread(create_rate_provider_pool, world)
        entries = world.whitelisted()
        rated_entry = msgspec.structs.replace(
            entries[0], key=rated.pool_id, address=bytes.fromhex(rated.address[2:])
        )
        pools = [*entries, rated_entry]
        engine, states = await _assert_same_as_synchronous(pools, world.w3, node.url)
    assert [s[2] for s in states[:-1]] == [PoolStatus.LIVE] * len(entries)
    assert all(s[4][0] is not None for s in states[:-1])  # type: ignore[index]
    assert states[-1][2] is PoolStatus.UNKNOWN
    assert states[-1][4] == (None, "balancer_rate_providers")
    excluded = samples_by_label(engine.metrics.registry, EXCLUDED, "reason")
    assert excluded == {"balancer_rate_providers": 1.0}
