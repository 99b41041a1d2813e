"""The live executor's fee policy and guards on anvil: a base fee over the cap or eating
the profit, the kill switch (file and NATS subject), the loss limits (gas spent, reverted
count) and the balance pre-flight — each stops sending, journaled `refused` with why."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from fractions import Fraction
from pathlib import Path

import msgspec
import nats
import pytest
from prometheus_client import CollectorRegistry

from devchain.executor_world import automine, new_funded_key
from devchain.rpc import mine, rpc_call
from executor.journal import AttemptStatus, JournalEntry, read_journal
from executor.nonce_lane import LaneState, LocalLane
from executor.preflight import InsufficientBalanceError
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings
from tests.chain.executor_fixtures import ExecutorWorld, executor_world, send_unchecked
from tests.chain.test_execute_command import ROOT, execute_args
from tests.chain.test_executor_guards import best, calldata
from tests.nats_server import NatsServer

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

GWEI = 10**9
DEADLINE_S = 60.0


@pytest.fixture
async def jetstream() -> AsyncIterator[NatsServer]:
    async with NatsServer(jetstream=True) as server:
        yield server


def _settings(world: ExecutorWorld, **changes: object) -> ExecutorSettings:
    return msgspec.structs.replace(world.settings(live=True), **changes)


@contextlib.contextmanager
def _base_fee(world: ExecutorWorld, base_fee: int) -> Iterator[None]:
    """The latest block at `base_fee`; afterwards the next block's base fee as it was
    (anvil keeps a set base fee across `evm_revert`, which the next test would inherit)."""
    w3 = world.chain.w3
    history = rpc_call(w3, "eth_feeHistory", ["0x1", "latest", []])
    next_base_fee = history["baseFeePerGas"][-1]
    rpc_call(w3, "anvil_setNextBlockBaseFeePerGas", [hex(base_fee)])
    mine(w3)
    try:
        assert world.client.latest_header()[1] == base_fee
        yield
    finally:
        rpc_call(w3, "anvil_setNextBlockBaseFeePerGas", [next_base_fee])


def _last(executor: OpportunityExecutor) -> JournalEntry:
    return read_journal(executor.journal.path)[-1]


def test_a_base_fee_over_the_cap_sends_nothing(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = best(world)
    executor = OpportunityExecutor.open(_settings(world, max_fee_per_gas=50 * GWEI))
    nonce = world.client.nonce(world.key.address)
    try:
        with _base_fee(world, 100 * GWEI):
            executor([opportunity])
        entry = _last(executor)
    finally:
        executor.close()
    assert entry.status is AttemptStatus.REFUSED
    assert "over the cap 50000000000" in entry.reason
    assert world.client.nonce(world.key.address, "pending") == nonce


def test_a_base_fee_that_eats_the_profit_sends_nothing(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = best(world)
    rate = Fraction(opportunity.gas_cost, opportunity.gas_units * opportunity.base_fee_per_gas)
    assert rate > 0, "the dev chain prices gas in the start token"
    # gas for the estimate alone at this base fee costs more than the whole profit
    ruinous = int(opportunity.profit / (rate * opportunity.gas_units)) + GWEI
    settings = _settings(world, max_fee_per_gas=10**30, max_gas_cost=10**40)
    executor = OpportunityExecutor.open(settings)
    nonce = world.client.nonce(world.key.address)
    try:
        with _base_fee(world, ruinous):
            executor([opportunity])
        entry = _last(executor)
    finally:
        executor.close()
    assert entry.status is AttemptStatus.REFUSED
    assert entry.reason.startswith("worst-case net profit -")
    assert world.client.nonce(world.key.address, "pending") == nonce


def test_the_kill_file_stops_sending(executor_world: ExecutorWorld, tmp_path: Path) -> None:
    world = executor_world
    kill = tmp_path / "STOP"
    registry = CollectorRegistry()
    executor = OpportunityExecutor.open(_settings(world, kill_file=str(kill)), registry)
    nonce = world.client.nonce(world.key.address)
    try:
        kill.write_text("")
        executor([best(world)])
        entry = _last(executor)
    finally:
        executor.close()
    assert entry.status is AttemptStatus.REFUSED and f"kill file {kill} exists" in entry.reason
    assert world.client.nonce(world.key.address, "pending") == nonce
    assert registry.get_sample_value("arena_executor_halted", {"guard": "kill_switch"}) == 1


async def test_a_kill_message_on_nats_stops_sending(
    executor_world: ExecutorWorld, jetstream: NatsServer
) -> None:
    world = executor_world
    settings = _settings(world, nats_url=jetstream.url, kill_subject="arena.test.kill")
    registry = CollectorRegistry()
    executor = await asyncio.to_thread(OpportunityExecutor.open, settings, registry)
    nonce = world.client.nonce(world.key.address)
    try:
        client = await nats.connect(jetstream.url)
        await client.publish("arena.test.kill", b"operator: market halted")
        await client.flush()
        await client.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE_S
        while executor.kill.engaged() is None:
            assert loop.time() < deadline, "the kill message never arrived"
            await asyncio.sleep(0.01)
        # shown at once, before anything else is attempted
        assert registry.get_sample_value("arena_executor_halted", {"guard": "kill_switch"}) == 1
        await asyncio.to_thread(executor, [best(world)])
        entry = _last(executor)
    finally:
        await asyncio.to_thread(executor.close)
    assert entry.status is AttemptStatus.REFUSED
    assert entry.reason == "kill message on NATS: operator: market halted"
    assert world.client.nonce(world.key.address, "pending") == nonce


def test_gas_spent_over_the_window_limit_stops_sending(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = best(world)
    registry = CollectorRegistry()
    executor = OpportunityExecutor.open(_settings(world, max_gas_spent=1), registry)
    try:
        with automine(world.chain.w3):
            executor([opportunity])
        included = _last(executor)
        executor([opportunity])
        stopped = _last(executor)
    finally:
        executor.close()
    assert included.status is AttemptStatus.INCLUDED
    assert stopped.status is AttemptStatus.REFUSED
    assert stopped.reason.startswith("loss limit: ") and "wei of gas spent" in stopped.reason

    # what the metrics saw of it: every stage timed, the outcome counted, the money
    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    for stage in ("plan", "simulate", "sign", "submit", "include"):
        assert (sample("arena_executor_stage_seconds_count", stage=stage) or 0) >= 1, stage
    assert sample("arena_executor_attempts_total", outcome="included", reason="none") == 1
    assert sample("arena_executor_attempts_total", outcome="refused", reason="loss_limit") == 1
    receipt = world.client.receipt(included.tx_hash or "")
    assert receipt is not None
    paid = int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    # Prometheus keeps floats: equal to the wei as a float
    assert paid > 0 and sample("arena_executor_gas_spent_wei_total") == float(paid)
    token = opportunity.tokens[0].lower()
    expected = sample("arena_executor_expected_profit_total", token=token)
    assert included.expected_profit == included.realized_profit
    assert expected == float(included.expected_profit or 0)
    assert sample("arena_executor_realized_profit_total", token=token) == expected
    assert sample("arena_executor_halted", guard="loss_limit") == 1
    assert sample("arena_executor_lane_next_nonce") == (included.nonce or 0) + 1


def test_reverted_transactions_over_the_limit_stop_sending(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = best(world)
    greedy = msgspec.structs.replace(opportunity, profit=opportunity.profit * 2)
    receipt = send_unchecked(world, world.key, world.executor, calldata(world, greedy))
    assert receipt["status"] == "0x0"
    executor = OpportunityExecutor.open(_settings(world, max_reverted=0))
    try:
        executor.account_mined(greedy, receipt)
        executor([opportunity])
        entry = _last(executor)
    finally:
        executor.close()
    assert entry.status is AttemptStatus.REFUSED
    assert entry.reason.startswith("loss limit: 1 reverted transactions in 100 blocks")


def test_a_key_that_cannot_pay_one_transaction_is_refused_at_start(
    executor_world: ExecutorWorld, tmp_path: Path
) -> None:
    world = executor_world
    _, secret = new_funded_key(world.chain.w3, funding=10**9)
    poor = tmp_path / "poor.key"
    poor.write_text(secret.hex())
    with pytest.raises(InsufficientBalanceError) as caught:
        OpportunityExecutor.open(_settings(world, key_file=str(poor)))
    assert caught.value.balance == 10**9
    assert f"fund it with at least {caught.value.needed - 10**9} wei more" in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--executor-nats", "nats://127.0.0.1:9"), "nonce lane unavailable"),
        (("--max-fee-gwei", "0"), "--max-fee-gwei"),
    ],
)
def test_arena_execute_live_refuses_to_start_in_one_line(
    executor_world: ExecutorWorld, extra: tuple[str, ...], message: str
) -> None:
    world = executor_world
    args = execute_args(world, str(world.tmp / "none.jsonl"), "--live", "--until-idle", "1", *extra)
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "arena" in line and message in line]
    assert len(errors) == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_after_a_reorg_the_lane_restarts_at_the_node_count(executor_world: ExecutorWorld) -> None:
    world = executor_world
    opportunity = msgspec.structs.replace(best(world), after_reorg=True)
    executor = OpportunityExecutor.open(_settings(world))
    pending = world.client.nonce(world.key.address, "pending")
    try:
        lane = executor.lane
        assert isinstance(lane, LocalLane)
        # five transactions the lane handed out were dropped by the reorg
        lane._apply(LaneState(next=pending + 5))
        with automine(world.chain.w3):
            executor([opportunity])
        entry = _last(executor)
    finally:
        executor.close()
    assert entry.status is AttemptStatus.INCLUDED
    assert entry.nonce == pending
