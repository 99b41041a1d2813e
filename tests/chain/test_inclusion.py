"""Inclusion tracking on anvil, from the node's heads and receipts.

- a mined transaction reorged out (anvil_reorg) is `reorged`, re-simulated, re-sent
  because it still pays, mined again and confirmed — its profit counted once;
- reorged out with a competitor's cycle in the new block: the re-simulation reverts, it
  is not re-sent, and it ends `dropped` with nothing counted;
- a transaction dropped from the pool (anvil_dropTransaction) is `dropped` after its
  blocks, its nonce released to the lane (a local file; the NATS KV lane), and the next
  attempt uses that nonce;
- a transaction dropped by us while the node still holds it has its nonce filled by a
  self-transfer at a bumped fee: never mined, no gap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import msgspec
import nats
import pytest
from prometheus_client import CollectorRegistry

from devchain.abi import call
from devchain.executor_world import arena_opportunities, automine
from devchain.rpc import rpc_call
from executor.journal import AttemptStatus, JournalEntry, confirmed_profit, read_journal
from executor.nonce_lane import LANE_DECODER, LaneState
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings
from executor.shared_lane import SharedLane, lane_key
from executor.transaction import UnsignedTransaction, next_max_fee, sign_transaction
from pathfinder.opportunity import Opportunity
from tests.chain.executor_fixtures import ExecutorWorld, RecordingLane, executor_world
from tests.chain.test_executor_guards import competitor
from tests.nats_server import NatsServer

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

WAIT_S = 60.0
S = AttemptStatus


def live_settings(world: ExecutorWorld, **changes: object) -> ExecutorSettings:
    base = msgspec.structs.replace(world.settings(live=True), deadline_blocks=20)
    return msgspec.structs.replace(base, **changes)


def best(world: ExecutorWorld) -> Opportunity:
    found = arena_opportunities(world.chain.w3, world.pools)
    assert found, "the dev chain is deployed mispriced: there is a cycle"
    return found[0]


def journal(world: ExecutorWorld) -> list[JournalEntry]:
    return read_journal(world.tmp / "journal.jsonl")


def mine(world: ExecutorWorld, blocks: int = 1) -> None:
    for _ in range(blocks):
        rpc_call(world.chain.w3, "evm_mine", [])


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)


def held(world: ExecutorWorld, token: str) -> int:
    return int(call(world.chain.w3, token, "ERC20", "balanceOf", world.executor)[0])


def test_a_reorged_transaction_is_resimulated_resent_and_counted_once(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    registry = CollectorRegistry()
    executor = OpportunityExecutor.open(live_settings(world, confirm_depth=2), registry)
    opportunity = best(world)
    token = opportunity.tokens[0].lower()
    try:
        with automine(world.chain.w3):
            executor([opportunity])
        first_block = journal(world)[-1].mined_block
        rpc_call(world.chain.w3, "anvil_reorg", [1, []])  # the block is replaced, empty
        assert held(world, token) == 0
        executor.track()  # reorged → re-simulated (still pays) → re-sent to the pool
        mine(world)
        executor.track()  # mined again
        mine(world, 2)
        executor.track()  # two blocks deep: confirmed
        mine(world, 3)
        executor.track()  # nothing more happens to it
    finally:
        executor.close()
    entries = journal(world)
    assert [e.status for e in entries] == [
        S.SENT,
        S.INCLUDED,
        S.REORGED,
        S.SENT,
        S.INCLUDED,
        S.CONFIRMED,
    ]
    reorged, resent, again, confirmed = entries[2:]
    assert reorged.mined_block == first_block and "re-simulated: still pays" in reorged.reason
    assert reorged.realized_profit is None
    assert "re-sent" in resent.reason and resent.tx_hash == entries[0].tx_hash
    assert first_block is not None and again.mined_block == first_block + 1
    assert again.block_hash != entries[1].block_hash
    assert held(world, token) == opportunity.profit == confirmed.realized_profit
    assert confirmed_profit(entries) == {token: opportunity.profit}
    assert executor.tracker.realized == {token: opportunity.profit}
    profit = registry.get_sample_value("arena_executor_realized_profit_total", {"token": token})
    assert profit == float(opportunity.profit)
    for state, times in (("included", 2), ("reorged", 1), ("sent", 1), ("confirmed", 1)):
        value = registry.get_sample_value(
            "arena_executor_inclusion_transitions_total", {"state": state}
        )
        assert value == times, state


def test_reorged_out_by_a_competitor_it_is_not_resent_and_ends_dropped(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    rival_key, rival = competitor(world)
    lane = RecordingLane(world)
    settings = live_settings(world, confirm_depth=3, drop_after_blocks=2)
    executor = OpportunityExecutor.open(settings, lane=lane)
    opportunity = best(world)
    try:
        with automine(world.chain.w3):
            executor([opportunity])
        (ours,) = executor.tracker.pending
        _, base_fee = world.client.latest_header()
        rival_tx = UnsignedTransaction(
            chain_id=world.client.chain_id(),
            nonce=world.client.nonce(rival_key.address),
            max_priority_fee_per_gas=10**9,
            max_fee_per_gas=2 * next_max_fee(base_fee, 10**9),
            gas=2_000_000,
            to=bytes.fromhex(rival[2:]),
            data=ours.signed.transaction.data,
        )
        rival_raw = "0x" + sign_transaction(rival_tx, rival_key).raw.hex()
        rpc_call(world.chain.w3, "anvil_reorg", [1, [[rival_raw, 0]]])
        executor.track()
        mine(world, 2)
        executor.track()
    finally:
        executor.close()
    entries = journal(world)
    assert [e.status for e in entries] == [S.SENT, S.INCLUDED, S.REORGED, S.DROPPED]
    assert "not re-sent: simulation reverted: InsufficientProfit(" in entries[2].reason
    assert confirmed_profit(entries) == {} and executor.tracker.realized == {}
    # confirmed in the lane when the node accepted it; given back when dropped
    assert lane.confirmed == [ours.nonce] and lane.resyncs == 1
    assert lane.released == [ours.nonce] and lane.lane.state.next == ours.nonce
    rival_profit = call(world.chain.w3, opportunity.tokens[0], "ERC20", "balanceOf", rival)[0]
    assert rival_profit == opportunity.profit and held(world, opportunity.tokens[0]) == 0


def test_a_dropped_transaction_frees_its_nonce_for_the_next_attempt(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    lane = RecordingLane(world)
    executor = OpportunityExecutor.open(live_settings(world, drop_after_blocks=2), lane=lane)
    nonce = world.client.nonce(world.key.address)
    try:
        thread = threading.Thread(target=executor, args=([best(world)],))
        thread.start()
        wait_until(lambda: [e.status for e in journal(world)] == [S.SENT], "the sent line")
        (sent,) = journal(world)
        assert sent.nonce == nonce
        rpc_call(world.chain.w3, "anvil_dropTransaction", [sent.tx_hash])
        mine(world, 2)
        thread.join(WAIT_S)
        assert not thread.is_alive()
        assert lane.released == [nonce]
        with automine(world.chain.w3):
            executor([best(world)])
    finally:
        executor.close()
    entries = journal(world)
    assert [e.status for e in entries] == [S.SENT, S.DROPPED, S.SENT, S.INCLUDED]
    assert "not mined within 2 blocks" in entries[1].reason
    assert entries[2].nonce == nonce and entries[3].tx_hash != sent.tx_hash
    assert world.client.receipt(str(sent.tx_hash)) is None


def test_a_transaction_dropped_while_the_node_holds_it_has_its_nonce_filled(
    executor_world: ExecutorWorld,
) -> None:
    """Nothing is mined before the receipt timeout: the transaction is `dropped` by us
    while the node still holds it (it could be mined later). Its nonce is filled by a
    self-transfer at fees at least 10 % higher, which replaces it: the dropped
    transaction is never mined, the nonce is used, the next attempt takes the next one."""
    world = executor_world
    lane = RecordingLane(world)
    registry = CollectorRegistry()
    settings = live_settings(world, receipt_timeout_s=1.0, drop_after_blocks=50)
    executor = OpportunityExecutor.open(settings, registry, lane=lane)
    nonce = world.client.nonce(world.key.address)
    try:
        executor([best(world)])  # automine is off: nothing is mined meanwhile
        sent, dropped = journal(world)
        assert (sent.status, dropped.status) == (S.SENT, S.DROPPED) and sent.nonce == nonce
        assert dropped.reason.startswith("no receipt within 1 s; nonce ")
        fill_hash = dropped.reason.rsplit(" ", 1)[1]
        assert "filled by self-transfer" in dropped.reason and fill_hash.startswith("0x")
        original = world.client.transaction(str(sent.tx_hash))
        fill = world.client.transaction(fill_hash)
        assert fill is not None and original is None  # the node replaced it
        assert int(fill["nonce"], 16) == nonce and fill["to"].lower() == world.key.address_hex
        assert int(fill["value"], 16) == 0 and fill["input"] == "0x"
        # the dropped one's priority fee is the policy's floor (no profit share set)
        assert settings.priority_share_bps == 0 and sent.max_fee_per_gas is not None
        assert 10 * int(fill["maxFeePerGas"], 16) >= 11 * sent.max_fee_per_gas
        assert 10 * int(fill["maxPriorityFeePerGas"], 16) >= 11 * settings.priority_fee_per_gas
        mine(world)
        receipt = world.client.receipt(fill_hash)
        assert receipt is not None and receipt["status"] == "0x1"
        assert world.client.receipt(str(sent.tx_hash)) is None
        assert world.client.nonce(world.key.address, "latest") == nonce + 1
        assert lane.released == [] and lane.confirmed == [nonce, nonce]
        with automine(world.chain.w3):
            executor([best(world)])
    finally:
        executor.close()
    entries = journal(world)
    assert [e.status for e in entries] == [S.SENT, S.DROPPED, S.SENT, S.INCLUDED]
    assert entries[2].nonce == nonce + 1  # no gap, no reuse
    fills = registry.get_sample_value("arena_executor_nonce_fills_total", {"outcome": "sent"})
    assert fills == 1


async def kv_lane(server: NatsServer, world: ExecutorWorld) -> LaneState:
    """The lane as stored in JetStream KV, read by a client of its own."""
    client = await nats.connect(server.url)
    try:
        kv = await client.jetstream().key_value("arena-nonce-lanes")
        entry = await kv.get(lane_key(world.client.chain_id(), world.key.address))
        return LANE_DECODER.decode(entry.value or b"")
    finally:
        await client.close()


async def test_a_dropped_transaction_frees_its_nonce_in_the_nats_kv_lane(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    async with NatsServer(jetstream=True) as server:
        settings = live_settings(world, nats_url=server.url, drop_after_blocks=2)
        executor = await asyncio.to_thread(OpportunityExecutor.open, settings)
        assert isinstance(executor.lane, SharedLane)
        nonce = world.client.nonce(world.key.address)
        loop = asyncio.get_running_loop()
        try:
            running = asyncio.ensure_future(asyncio.to_thread(executor, [best(world)]))
            deadline = loop.time() + WAIT_S
            while [e.status for e in journal(world)] != [S.SENT]:
                assert loop.time() < deadline, "timed out waiting for the sent line"
                await asyncio.sleep(0.05)
            (sent,) = journal(world)
            assert sent.nonce == nonce
            assert (await kv_lane(server, world)).next == nonce + 1  # used while pending
            rpc_call(world.chain.w3, "anvil_dropTransaction", [sent.tx_hash])
            mine(world, 2)
            await asyncio.wait_for(running, WAIT_S)
            assert await kv_lane(server, world) == LaneState(next=nonce)  # back in the lane
            with automine(world.chain.w3):
                await asyncio.to_thread(executor, [best(world)])
        finally:
            await asyncio.to_thread(executor.close)
    entries = journal(world)
    assert [e.status for e in entries] == [S.SENT, S.DROPPED, S.SENT, S.INCLUDED]
    assert entries[1].reason.endswith(f"nonce {nonce} released to the lane")
    assert entries[2].nonce == nonce and entries[3].tx_hash != sent.tx_hash
