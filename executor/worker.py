"""The executor on its own thread, fed through a bounded queue.

Every call the executor makes is a synchronous JSON-RPC request (an estimate and a
simulation per attempt; live, a send and inclusion polls until it is mined or dropped,
for up to `receipt_timeout_s`). Inside `arena run` the sink is called from the asyncio loop that
reads the stream, so `ExecutorThread` only enqueues each batch; one worker thread runs
the executor on the batches in order. When `capacity` batches are already waiting, the
new batch is dropped: each of its opportunities is journaled `refused` ("queue full")
and counted, and the arena goes on.

Settled blocks (`on_settled`, subscribed to the pipeline) queue one inclusion poll
(`track`): what was sent moves to included, confirmed or reorged as the arena's own
stream settles blocks and reorgs, even when no opportunity arrives.

Closing discards the batches still waiting (journaled `refused`, "stopping"), lets the
running batch finish for up to `grace_s` seconds, then stops it (a transaction still
followed is then journaled `dropped`, and its nonce settled in the lane).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Final, Protocol, final

from prometheus_client import CollectorRegistry, Counter, Gauge

from arena.block_assembler import Settled
from pathfinder.opportunity import Opportunity

log = logging.getLogger(__name__)

DEFAULT_CLOSE_GRACE_S: Final = 5.0
QUEUE_FULL: Final = "executor queue full: batch dropped"
STOPPING: Final = "arena stopping: batch not attempted"


class BatchExecutor(Protocol):
    """What the thread drives (`executor.session.OpportunityExecutor`)."""

    stop: threading.Event

    def __call__(self, opportunities: Sequence[Opportunity]) -> None: ...

    def refuse(self, opportunities: Sequence[Opportunity], reason: str) -> None: ...

    def track(self) -> None: ...

    def close(self) -> None: ...


@final
class ExecutorMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.dropped = Counter(
            "arena_executor_dropped_opportunities",
            "opportunities not attempted because the executor's queue was full",
            registry=registry,
        )
        self.failed = Counter(
            "arena_executor_failed_batches",
            "batches (or inclusion polls) the executor's thread stopped on an unexpected error",
            registry=registry,
        )
        self.waiting = Gauge(
            "arena_executor_queue_batches",
            "batches waiting for the executor's thread",
            registry=registry,
        )


@final
class ExecutorThread:
    """An opportunity sink (`__call__`, `close`) that never blocks its caller."""

    name = "executor"

    def __init__(
        self,
        executor: BatchExecutor,
        capacity: int,
        *,
        registry: CollectorRegistry | None = None,
        grace_s: float = DEFAULT_CLOSE_GRACE_S,
    ) -> None:
        self.executor = executor
        self.grace_s = grace_s
        self.metrics = ExecutorMetrics(registry)
        self.dropped = 0
        self._queue: queue.Queue[Sequence[Opportunity] | None] = queue.Queue(capacity)
        self._closed = False
        self._track_queued = False
        self._thread = threading.Thread(target=self._work, name="arena-executor")
        self._thread.start()

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        if self._closed or not opportunities:
            return
        batch = tuple(opportunities)
        try:
            self._queue.put_nowait(batch)
        except queue.Full:
            self.dropped += len(batch)
            self.metrics.dropped.inc(len(batch))
            log.warning(
                "executor: queue full (%d batches): %d opportunities of block %d dropped",
                self._queue.maxsize,
                len(batch),
                batch[0].block,
            )
            self.executor.refuse(batch, QUEUE_FULL)
            return
        self.metrics.waiting.set(self._queue.qsize())
        log.info("executor: queued %d opportunities of block %d", len(batch), batch[0].block)

    def on_settled(self, settled: Settled) -> None:
        """Queues one inclusion poll (an empty batch); one waiting is enough. When the
        queue is full nothing is lost: the batches waiting poll first."""
        if self._closed or self._track_queued:
            return
        self._track_queued = True
        try:
            self._queue.put_nowait(())
        except queue.Full:
            self._track_queued = False

    def _work(self) -> None:
        while True:
            batch = self._queue.get()
            self.metrics.waiting.set(self._queue.qsize())
            if batch is None:
                return
            if not batch:
                self._track_queued = False
                self._track()
                continue
            try:
                self.executor(batch)
            except Exception:  # the thread must outlive a bad batch; counted and logged
                self.metrics.failed.inc()
                log.exception("executor: batch of block %d failed", batch[0].block)
            log.info("executor: done with block %d", batch[0].block)

    def _track(self) -> None:
        try:
            self.executor.track()
        except Exception:  # the thread must outlive a failed poll; counted and logged
            self.metrics.failed.inc()
            log.exception("executor: inclusion poll failed")

    def _discard_waiting(self) -> None:
        while True:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                return
            if batch:
                self.executor.refuse(batch, STOPPING)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._discard_waiting()
        self._queue.put(None)  # room: the queue was just emptied, and only we put now
        self._thread.join(self.grace_s)
        if self._thread.is_alive():
            log.warning("executor: the running batch is stopped after %.1f s", self.grace_s)
            self.executor.stop.set()
            self._thread.join()
        self.executor.close()
