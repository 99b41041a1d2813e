"""anvil → chain follower → Unix socket → arena: equal to the contracts after every block.

The proof loop (`devchain.chain_proof`) changes the chain (seeded traffic, `anvil_reorg`
with replacement traffic, `anvil_rollback`), lets the follower publish, waits for each
settled point and compares every pool — slot0, liquidity, V2 reserves and every
initialized tick's liquidityNet/liquidityGross — with eth_calls at that block. The chain
holds the real V4 PoolManager too: its pools (hooked and dynamic-fee ones included) are
followed from the PoolManager's logs, hydrated through `extsload` and compared through
StateView.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.hydration import V2PoolSnapshot, V3PoolSnapshot, hydrate_pools
from arena.state_file import read_state_file
from arena.v4_hydration import V4Pool as V4Locator
from arena.v4_hydration import hydrate_v4_pools
from devchain import TrafficGenerator
from devchain.chain_check import compare_with_node
from devchain.chain_proof import ChainProof, ProofConfig, Step, change_chain, plan_steps
from devchain.v4_world import V4Traffic
from devchain.whitelist_file import write_whitelist
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.producers.chain_follower import ChainFollower
from exex_bridge.whitelist import load_whitelist_file
from tests.chain.conftest import V4DevChain
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "e2e.sock")


async def test_arena_equals_the_contracts_after_every_block_and_reorg(
    clean_v4_devchain: V4DevChain, tmp_path: Path, sock: str
) -> None:
    config = ProofConfig(blocks=210, reorgs=20, rollbacks=5, max_depth=5, seed=21)
    chain, v4 = clean_v4_devchain.chain, clean_v4_devchain.v4
    path = write_whitelist(chain.deployment, tmp_path / "w.json", v4=v4)
    whitelist = load_whitelist_file(path)
    hookless = tuple(p for p in v4.pools if int(p.hooks, 16) == 0)
    v4_traffic = V4Traffic(v4, hookless).actions(swap=4, add=1, remove=1)
    generator = TrafficGenerator(chain.w3, chain.deployment, seed=21, extra_actions=v4_traffic)
    v4_updates: Counter[str] = Counter()

    def count_v4(payload: bytes) -> None:
        msg = decode_message(payload)
        if isinstance(msg, m.PoolUpdate) and msg.event.protocol is m.Protocol.UNISWAP_V4:
            v4_updates[f"{type(msg.event.update).__name__} revert={msg.event.is_revert}"] += 1
        elif isinstance(msg, m.ReorgEpilogue) and isinstance(msg.update, m.Slot0Final):
            v4_updates[f"final {msg.update.protocol.name}"] += 1

    async with ChainProof(
        generator, whitelist.pools, sock, config, on_frame=count_v4, v4_state_view=v4.state_view
    ) as proof:
        result = await proof.run(plan_steps(config))
        engine = proof.engine
    print(result.table(), dict(v4_updates))  # kept by pytest on failure: the run's numbers
    # V4 pools took part: swaps and liquidity both ways, reverted ones and their finals.
    assert v4_updates["V4Swap revert=False"] > 100 and v4_updates["V4Swap revert=True"] > 5
    assert v4_updates["V4Liquidity revert=False"] > 30 and v4_updates["final UNISWAP_V4"] > 5
    assert sum(p.protocol is m.Protocol.UNISWAP_V4 for p in whitelist.pools) == len(v4.pools)
    assert result.mismatches == [] and result.mismatch_count == 0
    assert result.divergences == 0 and result.stale_pools == 0
    assert result.untrusted_settles == result.decode_errors == result.disconnects == 0
    assert result.ok
    assert sum(result.reorgs.values()) == 20 and set(result.reorgs) == {1, 2, 3, 4, 5}
    assert sum(result.rollbacks.values()) == 5
    assert result.blocks >= 200 and result.updates > 1000 and result.epilogues > 50
    # One check per settled point: every block outside an envelope and every envelope.
    assert result.checks == result.settles > 200
    assert proof.rpc_sync.resyncs == 1  # start-up only: nothing was ever lost
    # The comparison is not vacuous: a one-unit change in any pool is caught.
    tip = engine.tip_block
    w3, view = chain.w3, v4.state_view
    assert tip is not None and compare_with_node(engine, w3, tip, v4_state_view=view) == []
    index = next(i for i, p in enumerate(engine.registry.pools) if p.protocol.name.endswith("V2"))
    r0, r1 = engine.table.reserves(index)
    engine.set_reserves(index, r0 + 1, r1)
    (found,) = compare_with_node(engine, w3, tip)
    assert found.field == "reserves" and found.arena == (r0 + 1, r1)
    engine.set_reserves(index, r0, r1)
    v4_index = next(i for i, p in enumerate(engine.registry.pools) if p.key == v4.pools[0].pool_id)
    sqrt, liquidity, tick = engine.table.slot0(v4_index)
    engine.set_slot0(v4_index, sqrt, liquidity + 1, tick)
    (found,) = compare_with_node(engine, w3, tip, v4_state_view=view)
    assert found.field == "liquidity" and found.arena == liquidity + 1


async def _read_until(stream: asyncio.StreamReader, pattern: re.Pattern[str]) -> re.Match[str]:
    """The first stderr line matching `pattern` (readiness read from output, no sleeps)."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 60)).decode()
        if not line:
            raise AssertionError(f"arena run exited before printing {pattern.pattern}")
        found = pattern.search(line)
        if found:
            return found


async def test_arena_run_subprocess_hydrates_follows_and_resyncs(
    clean_v4_devchain: V4DevChain, tmp_path: Path, sock: str
) -> None:
    """The CLI path: `arena run --rpc` as a process, fed by the follower's socket.

    It hydrates at the block before the first one it sees, follows reorgs and a rollback,
    and after a reorg below the follower's 4 kept blocks (a stream_seq gap) resyncs from
    the node at the next block boundary. V4 pools are hydrated through StateView
    (`--v4-state-view`) and followed like the rest.
    """
    clean_devchain, v4 = clean_v4_devchain.chain, clean_v4_devchain.v4
    w3, deployment = clean_devchain.w3, clean_devchain.deployment
    whitelist_path = write_whitelist(deployment, tmp_path / "w.json", v4=v4)
    state_out = tmp_path / "state.json"
    hookless = tuple(p for p in v4.pools if int(p.hooks, 16) == 0)
    v4_traffic = V4Traffic(v4, hookless).actions()
    generator = TrafficGenerator(w3, deployment, seed=33, extra_actions=v4_traffic)
    async with FrameBroadcastServer(sock) as server:
        start = w3.eth.block_number + 1
        whitelist = load_whitelist_file(whitelist_path)
        follower = ChainFollower(w3, whitelist, server, start_block=start, keep_blocks=4)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sidecar.cli",
            "run",
            "--socket",
            sock,
            "--whitelist",
            str(whitelist_path),
            "--rpc",
            clean_devchain.node.url,
            "--state-out",
            str(state_out),
            "--spill-depth",
            "0",
            "--v4-state-view",
            v4.state_view,
            "--health-interval",
            "0.05",
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stderr is not None
        try:
            await server.wait_for_clients(1)
            for step in (
                Step("blocks", 6),
                Step("reorg", 2),
                Step("blocks", 3),
                Step("rollback", 2, then_mine=1),
                Step("blocks", 4),
            ):
                await asyncio.to_thread(change_chain, generator, step)
                await follower.poll_once()
            await _read_until(process.stderr, re.compile(rf"resync at block {start - 1} "))
            await asyncio.to_thread(change_chain, generator, Step("reorg", 4))  # > kept blocks
            assert (await follower.poll_once()).deep_reorg
            await asyncio.to_thread(change_chain, generator, Step("blocks", 2))
            await follower.poll_once()
            tip = w3.eth.block_number
            gap = re.compile(rf"resync at block {tip - 2} before block {tip - 1} \(seq_gap")
            await _read_until(process.stderr, gap)
            await _read_until(process.stderr, re.compile(rf"health: synced tip={tip} stale=0 "))
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    state = read_state_file(state_out)
    assert state.block == tip and not state.unsynced and state.stale == []
    pools = [(p.address, p.protocol) for p in deployment.pools]
    for (address, _), snap in zip(pools, hydrate_pools(w3, pools, tip), strict=True):
        held = state.pools[address.lower()]
        if isinstance(snap, V2PoolSnapshot):
            assert (held.reserve0, held.reserve1) == (str(snap.reserve0), str(snap.reserve1))
        else:
            assert isinstance(snap, V3PoolSnapshot)
            assert (held.sqrt_price_x96, held.liquidity, held.tick) == (
                str(snap.sqrt_price_x96),
                str(snap.liquidity),
                snap.tick,
            )
            ticks = {int(t): (int(v.net), int(v.gross)) for t, v in (held.ticks or {}).items()}
            assert ticks == snap.ticks
    manager = bytes.fromhex(v4.pool_manager[2:])
    locators = [
        V4Locator(pool_id=p.pool_id, pool_manager=manager, tick_spacing=p.tick_spacing)
        for p in v4.pools
    ]
    for v4_snap in hydrate_v4_pools(w3, locators, tip, state_view=v4.state_view):
        held = state.pools[v4_snap.pool_id]
        assert (held.sqrt_price_x96, held.liquidity, held.tick) == (
            str(v4_snap.sqrt_price_x96),
            str(v4_snap.liquidity),
            v4_snap.tick,
        )
        ticks = {int(t): (int(v.net), int(v.gross)) for t, v in (held.ticks or {}).items()}
        assert ticks == v4_snap.ticks and len(ticks) > 5
