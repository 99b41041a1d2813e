"""V4 pools whitelisted mid-stream: hydrated at the block boundary from the PoolManager —
through StateView, or through `extsload` for nodes without it — then exact like the rest
through blocks, reorgs and a rollback (compared with StateView at every settled point)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from arena.engine import PoolStatus
from devchain import TrafficGenerator
from devchain.chain_proof import ChainProof, ProofConfig, plan_steps
from devchain.v4_world import V4Traffic
from devchain.whitelist_file import whitelist_json
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.whitelist import parse_pools_document
from tests.chain.conftest import V4DevChain
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "v4mid.sock")


def _updates_of(payloads: list[bytes], pools: set[bytes]) -> list[m.PoolUpdateMessage]:
    events = []
    for payload in payloads:
        msg = decode_message(payload)
        if isinstance(msg, m.PoolUpdate) and msg.event.pool_id.value in pools:
            events.append(msg.event)
    return events


@pytest.mark.parametrize("reader", ["state_view", "extsload"])
async def test_v4_pool_added_mid_stream_is_hydrated_and_then_exact(
    clean_v4_devchain: V4DevChain, sock: str, reader: Literal["state_view", "extsload"]
) -> None:
    chain, v4 = clean_v4_devchain.chain, clean_v4_devchain.v4
    whitelist = parse_pools_document(whitelist_json(chain.deployment, v4=v4))
    hookless = tuple(p for p in v4.pools if int(p.hooks, 16) == 0)
    late = {p.pool_id for p in hookless[:2]}
    frames: list[bytes] = []
    traffic = V4Traffic(v4, hookless).actions(swap=8, add=1, remove=1)
    generator = TrafficGenerator(chain.w3, chain.deployment, seed=45, extra_actions=traffic)
    early = [p for p in whitelist.pools if p.key not in late]
    async with ChainProof(
        generator, early, sock, on_frame=frames.append, v4_state_view=v4.state_view
    ) as proof:
        proof.rpc_sync.v4_state_view = v4.state_view if reader == "state_view" else None
        for step in plan_steps(ProofConfig(blocks=15, reorgs=2, rollbacks=0, seed=6)):
            await proof.step(step)
        assert _updates_of(frames, late) == []  # not followed yet
        boundary, seen = chain.w3.eth.block_number, len(frames)
        proof.add_pools(p for p in whitelist.pools if p.key in late)
        for step in plan_steps(ProofConfig(blocks=30, reorgs=3, rollbacks=1, seed=7)):
            await proof.step(step)
        result = proof.finish()
        engine = proof.engine
    assert proof.rpc_sync.resyncs == 1 and proof.rpc_sync.hydrations == 1
    report = proof.rpc_sync.last_report
    assert report is not None and report.block == boundary and report.pools == 2
    after = _updates_of(frames[seen:], late)
    assert {e.pool_id.value for e in after} == late  # the follower emits them from then on
    assert {type(e.update) for e in after} == {m.V4Swap, m.V4Liquidity}
    assert any(e.is_revert for e in after) and all(e.block_number > boundary for e in after)
    for key in late:
        index = engine.registry.index_of[key]
        assert engine.status[index] == PoolStatus.LIVE and len(engine.ticks.ticks(index)) > 5
    # Every settled point after the addition compared the new pools with StateView too.
    assert result.mismatch_count == 0 and result.ok, result.table()
    assert sum(result.reorgs.values()) == 5
