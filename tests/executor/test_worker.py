"""The executor's thread: the caller never waits; a full queue drops the batch, counted
and refused; a failing batch does not stop the thread; closing refuses what waits."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from arena.block_assembler import Settled
from arena.sync_state import SyncState
from executor.worker import QUEUE_FULL, STOPPING, ExecutorThread
from pathfinder.opportunity import Opportunity

WAIT_S = 30.0


def opportunity(block: int) -> Opportunity:
    pools = ("0x" + "01" * 20, "0x" + "02" * 20)
    token = "0x" + "aa" * 20
    return Opportunity(
        chain="ethereum",
        block=block,
        base_fee_per_gas=1,
        after_reorg=False,
        pools=pools,
        zero_for_one=(True, False),
        tokens=(token, "0x" + "bb" * 20, token),
        amount_in=10,
        expected_out=11,
        profit=1,
        gas_units=1,
        gas_cost=0,
        net_profit=1,
        screened_profit=0.0,
        screened_amount_in=0.0,
    )


class GatedExecutor:
    """Runs a batch only when `gate` opens; block 13 raises."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.gate = threading.Event()
        self.started = threading.Event()
        self.done: list[int] = []
        self.refused: list[tuple[int, str]] = []
        self.finished = threading.Condition()
        self.closed = False

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        self.started.set()
        self.gate.wait(WAIT_S)
        block = opportunities[0].block
        if block == 13:
            raise RuntimeError("a bad batch")
        with self.finished:
            self.done.append(block)
            self.finished.notify_all()

    def refuse(self, opportunities: Sequence[Opportunity], reason: str) -> None:
        self.refused += [(o.block, reason) for o in opportunities]

    def track(self) -> None:
        with self.finished:
            self.done.append(-1)  # -1: an inclusion poll
            self.finished.notify_all()

    def close(self) -> None:
        self.closed = True


def settled(block: int) -> Settled:
    return Settled(
        block=block,
        base_fee_per_gas=1,
        changed=frozenset(),
        after_reorg=False,
        sync=SyncState.SYNCED,
    )


def dropped_total(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("arena_executor_dropped_opportunities_total")


def test_a_full_queue_drops_the_new_batch_and_the_caller_never_waits() -> None:
    executor, registry = GatedExecutor(), CollectorRegistry()
    thread = ExecutorThread(executor, capacity=2, registry=registry)
    thread([opportunity(1)])
    assert executor.started.wait(WAIT_S)  # block 1 runs; 2 and 3 wait; 4 is dropped
    for block in (2, 3, 4):
        thread([opportunity(block), opportunity(block)])
    assert executor.refused == [(4, QUEUE_FULL), (4, QUEUE_FULL)]
    assert thread.dropped == 2 and dropped_total(registry) == 2
    executor.gate.set()
    with executor.finished:
        assert executor.finished.wait_for(lambda: executor.done == [1, 2, 3], WAIT_S)
    thread.close()
    assert executor.closed


def test_a_failing_batch_is_counted_and_the_next_one_runs() -> None:
    executor, registry = GatedExecutor(), CollectorRegistry()
    executor.gate.set()
    thread = ExecutorThread(executor, capacity=4, registry=registry)
    thread([opportunity(13)])
    thread([opportunity(14)])
    with executor.finished:
        assert executor.finished.wait_for(lambda: executor.done == [14], WAIT_S)
    assert registry.get_sample_value("arena_executor_failed_batches_total") == 1
    thread.close()


def test_closing_refuses_the_waiting_batches_and_stops_the_running_one() -> None:
    executor = GatedExecutor()
    thread = ExecutorThread(executor, capacity=4, registry=CollectorRegistry(), grace_s=0.01)
    thread([opportunity(1)])
    assert executor.started.wait(WAIT_S)
    thread([opportunity(2)])
    executor.stop.clear()
    closer = threading.Thread(target=thread.close)
    closer.start()
    assert executor.stop.wait(WAIT_S)  # the grace passed: the running batch is told to stop
    executor.gate.set()
    closer.join(WAIT_S)
    assert not closer.is_alive()
    assert executor.refused == [(2, STOPPING)]
    assert executor.closed
    thread([opportunity(3)])  # after closing: ignored
    assert executor.refused == [(2, STOPPING)]


def test_settled_blocks_queue_one_inclusion_poll_in_order_with_the_batches() -> None:
    executor = GatedExecutor()
    thread = ExecutorThread(executor, capacity=4, registry=CollectorRegistry())
    thread([opportunity(1)])
    assert executor.started.wait(WAIT_S)  # block 1 runs, held at the gate
    thread.on_settled(settled(1))
    thread([opportunity(2)])
    thread.on_settled(settled(2))  # a poll already waits: not queued twice
    executor.gate.set()
    with executor.finished:
        assert executor.finished.wait_for(lambda: len(executor.done) == 3, WAIT_S)
        thread.on_settled(settled(3))  # nothing waits now: one more poll
        assert executor.finished.wait_for(lambda: len(executor.done) == 4, WAIT_S)
    assert executor.done == [1, -1, 2, -1]
    thread.close()
    thread.on_settled(settled(4))  # closed: ignored
    assert executor.done == [1, -1, 2, -1] and executor.refused == []
