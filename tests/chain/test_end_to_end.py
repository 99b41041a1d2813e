"""anvil → chain follower → Unix socket → arena: equal to the contracts after every block.

The proof loop (`devchain.chain_proof`) changes the chain (seeded traffic, `anvil_reorg`
with replacement traffic, `anvil_rollback`), lets the follower publish, waits for each
settled point and compares every pool — slot0, liquidity, V2 reserves and every
initialized tick's liquidityNet/liquidityGross — with eth_calls at that block.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.hydration import V2PoolSnapshot, V3PoolSnapshot, hydrate_pools
from arena.state_file import read_state_file
from devchain import TrafficGenerator
from devchain.chain_check import compare_with_node
from devchain.chain_proof import ChainProof, ProofConfig, Step, change_chain, plan_steps
from devchain.whitelist_file import write_whitelist
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.producers.chain_follower import ChainFollower
from exex_bridge.whitelist import load_whitelist_file
from tests.chain.conftest import DevChain
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "e2e.sock")


async def test_arena_equals_the_contracts_after_every_block_and_reorg(
    clean_devchain: DevChain, tmp_path: Path, sock: str
) -> None:
    config = ProofConfig(blocks=210, reorgs=20, rollbacks=5, max_depth=5, seed=21)
    whitelist = load_whitelist_file(write_whitelist(clean_devchain.deployment, tmp_path / "w.json"))
    generator = TrafficGenerator(clean_devchain.w3, clean_devchain.deployment, seed=21)
    async with ChainProof(generator, whitelist.pools, sock, config) as proof:
        result = await proof.run(plan_steps(config))
        engine = proof.engine
    print(result.table())  # kept by pytest on failure: the run's numbers
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
    assert tip is not None and compare_with_node(engine, clean_devchain.w3, tip) == []
    index = next(i for i, p in enumerate(engine.registry.pools) if p.protocol.name.endswith("V2"))
    r0, r1 = engine.table.reserves(index)
    engine.set_reserves(index, r0 + 1, r1)
    (found,) = compare_with_node(engine, clean_devchain.w3, tip)
    assert found.field == "reserves" and found.arena == (r0 + 1, r1)


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
    clean_devchain: DevChain, tmp_path: Path, sock: str
) -> None:
    """The CLI path: `arena run --rpc` as a process, fed by the follower's socket.

    It hydrates at the block before the first one it sees, follows reorgs and a rollback,
    and after a reorg below the follower's 4 kept blocks (a stream_seq gap) resyncs from
    the node at the next block boundary.
    """
    w3, deployment = clean_devchain.w3, clean_devchain.deployment
    whitelist_path = write_whitelist(deployment, tmp_path / "w.json")
    state_out = tmp_path / "state.json"
    generator = TrafficGenerator(w3, deployment, seed=33)
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
