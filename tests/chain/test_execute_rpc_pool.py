"""The executor over the RPC layer's pool, on anvil behind real proxies:

- reads fail over from a dead endpoint to a live one (counted per endpoint in the
  `arena_rpc_*` families, as `client="executor"`);
- `arena execute --live` with two endpoints, the second dead: the opportunity is sent once,
  through the first (the pinned write endpoint), and included;
- the write endpoint loses the answer of eth_sendRawTransaction: the transaction reached
  the node exactly once, the lane took it as ambiguous, settled it by its hash — asked of
  the write endpoint, though the other one answers reads faster and has not seen the
  transaction — and ends consistent (no gap, no reused nonce); the second endpoint never
  saw a write.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from devchain.executor_world import arena_opportunities, automine
from executor.chain_pool import ChainPool
from executor.journal import AttemptStatus, read_journal
from executor.session import OpportunityExecutor
from exex_bridge.rpc import RpcMetrics
from tests.chain.executor_fixtures import ExecutorWorld, RecordingLane, executor_world
from tests.chain.rpc_fault_proxy import Fault, FaultProxy
from tests.chain.test_execute_command import ROOT, TIMEOUT, append, execute_args
from tests.rpc_proxy import closed_port_url

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

NOT_REACHED: Final = "nonce too low"  # unused: FaultProxy answers it only on REJECT


def _requests(registry: CollectorRegistry, endpoint: str, outcome: str) -> float:
    labels = {"client": "executor", "endpoint": endpoint, "outcome": outcome}
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "arena_rpc_requests_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


def test_reads_fail_over_from_a_dead_endpoint(executor_world: ExecutorWorld) -> None:
    world = executor_world
    registry = CollectorRegistry()
    urls = f"{world.chain.node.url},{closed_port_url()}"
    pool = ChainPool(urls, RpcMetrics(registry), health_interval_s=None)
    try:
        live, dead = pool.client.names
        assert pool.client.write_endpoint == live
        expected = world.client.block_number()
        # the dead endpoint, never measured, ranks as fast once the live one was: the
        # reads after the first try it, fail, and are retried on the live one
        numbers = [pool.chain.block_number() for _ in range(4)]
        assert numbers == [expected] * 4
        assert pool.chain.nonce(world.key.address) == world.client.nonce(world.key.address)
    finally:
        pool.close()
    assert _requests(registry, dead, "transport") >= 1
    assert _requests(registry, dead, "ok") == 0
    assert _requests(registry, live, "ok") >= 5


def test_live_execute_with_a_dead_second_endpoint_sends_once_through_the_first(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    nonce = world.client.nonce(world.key.address, "latest")
    source = world.tmp / "live.jsonl"
    append(source, arena_opportunities(world.chain.w3, world.pools))
    with FaultProxy(world.chain.node.url, {}, NOT_REACHED) as writer:
        args = execute_args(world, str(source), "--live", "--until-idle", "0.5")
        dead = closed_port_url()
        args[args.index(world.chain.node.url)] = f"{writer.url},{dead}"
        with automine(world.chain.w3):
            done = subprocess.run(
                args, capture_output=True, text=True, cwd=ROOT, timeout=TIMEOUT, check=False
            )
        sends = writer.sends
    assert done.returncode == 0, done.stderr
    journal = read_journal(world.tmp / "journal.jsonl")
    included = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    sent = [e for e in journal if e.tx_hash]
    assert included, done.stderr
    assert f"RPC endpoint {dead.rstrip('/')} is unhealthy" in done.stderr  # checked, ranked last
    assert sends == len({e.tx_hash for e in sent})  # one write per transaction, no retry
    assert world.client.nonce(world.key.address, "latest") == nonce + len(included)


def test_a_lost_write_answer_is_sent_once_and_settled_as_ambiguous(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    registry = CollectorRegistry()
    recording = RecordingLane(world)
    opportunity = arena_opportunities(world.chain.w3, world.pools)[0]
    start = world.client.nonce(world.key.address, "pending")
    with (
        # the writer answers reads slowly, so the pool ranks the reader first for reads;
        # the reader stands for a node the transaction has not reached yet
        FaultProxy(
            world.chain.node.url, {1: Fault.LOSE_ANSWER}, NOT_REACHED, read_delay=0.05
        ) as writer,
        FaultProxy(world.chain.node.url, {}, NOT_REACHED, unseen=True) as reader,
    ):
        settings = msgspec.structs.replace(
            world.settings(live=True), rpc_url=f"{writer.url},{reader.url}"
        )
        executor = OpportunityExecutor.open(settings, registry, lane=recording)
        assert executor.pool is not None
        write_endpoint = executor.pool.client.write_endpoint
        try:
            with automine(world.chain.w3):
                executor([opportunity])
                executor.track()
        finally:
            executor.close()
        writes = (writer.sends, reader.sends)
        lookups = (writer.lookups, reader.lookups)
    assert writes == (1, 0)  # exactly once, and only through the pinned endpoint
    assert lookups[0] >= 1 and lookups[1] == 0  # its fate asked where it was written
    ambiguous = registry.get_sample_value("arena_executor_lane_errors_total", {"kind": "ambiguous"})
    assert ambiguous == 1
    assert _requests(registry, write_endpoint, "unconfirmed_write") == 1
    journal = read_journal(Path(settings.journal))
    sent = [e for e in journal if e.tx_hash]
    assert len({e.tx_hash for e in sent}) == 1
    tx_hash = sent[0].tx_hash
    assert world.client.receipt(tx_hash) is not None  # the node had it: it was mined
    assert recording.reserved == [start] and recording.confirmed == [start]
    assert recording.released == [] and recording.resyncs >= 1
    state = recording.lane.state
    assert state.next == start + 1 == world.client.nonce(world.key.address, "pending")
    assert not state.free and not state.leases
