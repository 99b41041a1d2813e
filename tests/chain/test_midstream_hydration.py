"""A pool whitelisted mid-stream: hydrated at the block boundary, then exact like the rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arena.engine import PoolStatus
from devchain import TrafficGenerator
from devchain.chain_proof import ChainProof, ProofConfig, plan_steps
from devchain.whitelist_file import whitelist_json
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.whitelist import parse_pools_document
from tests.chain.conftest import DevChain
from tests.exex_bridge.socket_streams import socket_path_in

pytestmark = pytest.mark.chain


@pytest.fixture
def sock(tmp_path: Path) -> Iterator[str]:
    yield from socket_path_in(tmp_path, "midstream.sock")


def _updates_of(payloads: list[bytes], pools: set[bytes]) -> list[m.PoolUpdateMessage]:
    events = []
    for payload in payloads:
        msg = decode_message(payload)
        if isinstance(msg, m.PoolUpdate) and msg.event.pool_id.value in pools:
            events.append(msg.event)
    return events


async def test_pool_added_mid_stream_is_hydrated_and_then_exact(
    clean_devchain: DevChain, sock: str
) -> None:
    w3 = clean_devchain.w3
    whitelist = parse_pools_document(whitelist_json(clean_devchain.deployment))
    v2 = next(p for p in whitelist.pools if p.protocol is m.Protocol.UNISWAP_V2)
    v3 = next(p for p in whitelist.pools if p.protocol is m.Protocol.UNISWAP_V3)
    late = {v2.address, v3.address}
    frames: list[bytes] = []
    generator = TrafficGenerator(w3, clean_devchain.deployment, seed=44)
    early = [p for p in whitelist.pools if p.address not in late]
    async with ChainProof(generator, early, sock, on_frame=frames.append) as proof:
        for step in plan_steps(ProofConfig(blocks=25, reorgs=3, rollbacks=1, seed=4)):
            await proof.step(step)
        assert _updates_of(frames, late) == []  # not followed yet
        boundary, seen = w3.eth.block_number, len(frames)
        assert proof.engine.tip_block == boundary
        proof.add_pools([v2, v3])
        # Reorgs after the addition stay above the block the new pools were hydrated at.
        for step in plan_steps(ProofConfig(blocks=40, reorgs=4, rollbacks=1, seed=5)):
            await proof.step(step)
        result = proof.finish()
        engine = proof.engine
    assert proof.rpc_sync.resyncs == 1 and proof.rpc_sync.hydrations == 1
    report = proof.rpc_sync.last_report
    assert report is not None and report.block == boundary and report.pools == 2
    after = _updates_of(frames[seen:], late)
    assert {e.pool_id.value for e in after} == late  # the follower emits them from then on
    assert any(e.is_revert for e in after) and all(e.block_number > boundary for e in after)
    for pool in (v2, v3):
        assert engine.status[engine.registry.index_of[pool.key]] == PoolStatus.LIVE
    # Every settled point after the addition compared the new pools with eth_call too.
    assert result.mismatch_count == 0 and result.ok, result.table()
    assert sum(result.reorgs.values()) == 7
