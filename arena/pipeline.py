"""The glue `arena replay` and `arena run` share: frames in, settled states out.

`open_pipeline` builds an engine (with its RocksDB spill and metrics), registers the
whitelist and optionally seeds an initial state. `Pipeline.feed_frame` decodes one frame
payload and hands it to the block assembler.

Consumers subscribe; the pipeline never names them. One rule for every subscriber:
`subscribe_block_start` subscribers see every block as it opens (before any of it
applies), `subscribe_settled` subscribers see every settled point with its `SyncState`
and decide themselves what an untrusted point means to them. Each list runs in
registration order; a subscriber is registered at most once. Checkpoints are the
pipeline's own business: taken at trustworthy points before the subscribers run.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar, final

from arena.block_assembler import BlockAssembler, Settled
from arena.checkpoint import DEFAULT_KEEP, CheckpointStore
from arena.engine import ArenaEngine
from arena.errors import ArenaError
from arena.frame_hold import FrameHold
from arena.metrics import ArenaMetrics
from arena.resume import NotCheckpointableError, RestoreReport, capture_checkpoint, seed_engine
from arena.snapshot_ring import DEFAULT_DEPTH
from arena.spill import DEFAULT_SPILL_DEPTH, RocksSpill
from arena.summary import (
    LatencySamples,
    ReplaySummary,
    sample_value,
    samples_by_label,
)
from arena.sync_state import LossCause
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.errors import CodecError
from exex_bridge.whitelist import PROTOCOL_SHORT, load_whitelist_file

log = logging.getLogger(__name__)

BlockStartSubscriber = Callable[[m.BeginBlock], object]
SettledSubscriber = Callable[[Settled], object]
_S = TypeVar("_S")
_LOGGED_DECODE_ERRORS: Final = 10  # then only counted: a corrupt file must not flood the log


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """`spill_path` None: no spill (reorgs deeper than the ring make pools stale).
    `checkpoint_every` N > 0 saves a checkpoint to `checkpoint_path` every N trustworthy
    settled blocks. `resume` restores the latest checkpoint; `initial_state` is then only
    used when there is none."""

    whitelist: Path
    initial_state: Path | None = None
    spill_path: Path | None = None
    spill_depth: int = DEFAULT_SPILL_DEPTH
    ring_depth: int = DEFAULT_DEPTH
    checkpoint_path: Path | None = None
    checkpoint_every: int = 0
    checkpoint_keep: int = DEFAULT_KEEP
    resume: bool = False


class AlreadySubscribedError(ArenaError):
    """A subscriber registered twice would see every point twice."""

    def __init__(self, subscriber: object) -> None:
        self.subscriber = subscriber
        super().__init__(f"{subscriber!r} is already subscribed")


@final
class Pipeline:
    """Decodes frames, feeds the assembler, times each block and counts what happened."""

    def __init__(
        self,
        engine: ArenaEngine,
        *,
        spill: RocksSpill | None = None,
        checkpoints: CheckpointStore | None = None,
        checkpoint_every: int = 0,
        columnar: bool = False,
    ) -> None:
        self.engine = engine
        # Hand the assembler each PoolUpdate's frame: blocks then take the columnar path.
        # Off by default: on an idle machine the reference path is faster (0009).
        self.columnar = columnar
        self.metrics = engine.metrics
        self.assembler = BlockAssembler(engine)
        self.spill = spill
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every if checkpoints is not None else 0
        self._block_start_subscribers: list[BlockStartSubscriber] = []
        self._settled_subscribers: list[SettledSubscriber] = []
        self.resumed: RestoreReport | None = None
        # where the source stands (stream sequence, frames of that message applied),
        # recorded in each checkpoint
        self.source_position: Callable[[], tuple[int, int] | None] | None = None
        self._since_checkpoint = 0
        self.frames = 0
        self.decode_errors = 0
        self.settled_points = 0
        self.last_settled: Settled | None = None
        self.updates_by_protocol: Counter[m.Protocol] = Counter()
        self.apply_latency = LatencySamples()
        self.revert_latency = LatencySamples()
        # per settled point, all settled subscribers together (the path recalculation)
        self.subscriber_latency = LatencySamples()
        self._started = time.perf_counter()
        self.held = FrameHold(self.metrics.hold)

    @property
    def at_boundary(self) -> bool:
        """No block and no reorg envelope is open and no frame is held: stopping here
        loses nothing."""
        return self.assembler.phase.at_boundary and not self.held.holding

    def hold_frames(self, reason: str) -> None:
        """Keep every frame fed from now on, in order, until `release_frames` (a block
        start subscriber waiting for the node's RPC without blocking the reader)."""
        self.held.start(reason)

    def release_frames(self, budget: int | None = None) -> bool:
        """Feed the held frames (and stream events) in order, at most `budget` of them;
        True once none is left to feed for this hold. A block start among them may hold
        again: the rest then waits for that hold (and True is returned)."""
        held = self.held
        held.stop()
        fed = 0
        while not held.active and held.items:
            if budget is not None and fed >= budget:
                return False
            item = held.next_item()
            fed += 1
            if isinstance(item, bytes):
                self._feed_frame_now(item)
            else:
                item()
        return True

    def subscribe_block_start(self, subscriber: BlockStartSubscriber) -> None:
        """`subscriber(begin)` when a block opens, before any of it applies (RPC
        hydration and whitelist changes act here). Raises AlreadySubscribedError."""
        _add_once(self._block_start_subscribers, subscriber)

    def subscribe_settled(self, subscriber: SettledSubscriber) -> None:
        """`subscriber(settled)` at every settled point, trustworthy or not: it reads
        `settled.sync`. Raises AlreadySubscribedError."""
        _add_once(self._settled_subscribers, subscriber)

    def feed_frame(self, payload: bytes | memoryview) -> Settled | None:
        if self.held.holding:
            self.held.keep(payload)
            return None
        return self._feed_frame_now(payload)

    def _feed_frame_now(self, payload: bytes | memoryview) -> Settled | None:
        self.frames += 1
        try:
            msg = decode_message(payload)
        except CodecError as exc:
            self.decode_errors += 1
            if self.decode_errors <= _LOGGED_DECODE_ERRORS:
                log.warning(
                    "undecodable frame #%d (stream_seq %s): %s", self.frames, exc.stream_seq, exc
                )
            self.assembler.on_decode_error(exc.stream_seq)
            return None
        if self.columnar and msg.__class__ is m.PoolUpdate:
            # a memoryview may be over a buffer the source reuses: the block keeps a copy
            return self.feed(msg, payload if isinstance(payload, bytes) else bytes(payload))
        return self.feed(msg)

    def feed(self, msg: m.ControlMessage, payload: bytes | None = None) -> Settled | None:
        """Returns the point `msg` settled, if any, after every subscriber has seen it."""
        if isinstance(msg, m.EndBlock):
            settled = self._feed_end(msg)
        else:
            settled = self.assembler.feed(msg, payload)
            opened = self.assembler.open_block
            if opened is not None and opened.begin is msg:
                for subscriber in self._block_start_subscribers:
                    subscriber(msg)
        if settled is not None:
            self._settled(settled)
        return settled

    def on_connection_lost(self) -> None:
        if self.held.holding:  # after the frames read before it
            self.held.defer(self.assembler.on_connection_lost)
            return
        self.assembler.on_connection_lost()

    def on_stream_end(self, cause: LossCause, detail: str) -> None:
        if self.held.holding:
            self.held.defer(lambda: self.assembler.on_stream_end(cause, detail))
            return
        self.assembler.on_stream_end(cause, detail)

    def on_producer_restart(self, detail: str) -> None:
        """A relayed stream says its producer restarted here (what a socket client sees
        as its connection ending): counted, what is open is lost, a new stream begins."""
        self.assembler.on_producer_restart(detail)

    def _feed_end(self, msg: m.EndBlock) -> Settled | None:
        """EndBlock is where a block is applied or reverted: time it. The tip moves
        exactly when the engine took the block (a discarded block leaves it alone)."""
        block = self.assembler.open_block
        tip = self.engine.tip_block
        started = time.perf_counter()
        settled = self.assembler.feed(msg)
        elapsed = time.perf_counter() - started
        if block is not None and self.engine.tip_block != tip:
            samples = self.revert_latency if block.begin.is_revert else self.apply_latency
            samples.add(elapsed)
            # only the updates of blocks the engine took (not duplicates, not discards)
            self.updates_by_protocol.update(event.protocol for event in block.events)
        return settled

    def _settled(self, settled: Settled) -> None:
        self.settled_points += 1
        self.last_settled = settled
        if self.spill is not None:
            self.metrics.spill_blocks.set(len(self.spill))
        if settled.trustworthy and self.checkpoint_every:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint_now()
        if self._settled_subscribers:
            started = time.perf_counter()
            for subscriber in self._settled_subscribers:
                subscriber(settled)
            self.subscriber_latency.add(time.perf_counter() - started)

    def checkpoint_now(self) -> int | None:
        """Save a checkpoint if there is a store and the state is trustworthy at a block
        boundary; returns its block."""
        if self.checkpoints is None or not self.at_boundary:
            return None
        try:
            position = self.source_position() if self.source_position is not None else None
            checkpoint = capture_checkpoint(self.engine, self.assembler.last_seq, position)
        except NotCheckpointableError as exc:
            log.info("checkpoint skipped: %s", exc)
            return None
        self.checkpoints.save(checkpoint)
        self._since_checkpoint = 0
        return checkpoint.block

    def summary(
        self,
        *,
        source: str,
        format: str,
        bytes_read: int,
        truncated_bytes: int = 0,
        ended_inside_block: bool = False,
    ) -> ReplaySummary:
        registry = self.metrics.registry
        return ReplaySummary(
            source=source,
            format=format,
            frames=self.frames,
            bytes_read=bytes_read,
            decode_errors=self.decode_errors,
            truncated_bytes=truncated_bytes,
            ended_inside_block=ended_inside_block,
            blocks_applied=sample_value(registry, "arena_block_applied_total"),
            blocks_reverted=sample_value(registry, "arena_block_reverted_total"),
            reorgs=sample_value(registry, "arena_reorg_envelopes_total"),
            settled_points=self.settled_points,
            tip_block=self.engine.tip_block,
            duplicates=sample_value(registry, "arena_stream_duplicates_total"),
            updates_by_protocol={
                PROTOCOL_SHORT[p]: n for p, n in sorted(self.updates_by_protocol.items())
            },
            discarded_by_reason=samples_by_label(registry, "arena_block_discarded_total", "reason"),
            divergences_by_kind=samples_by_label(registry, "arena_reorg_divergences_total", "kind"),
            stale_pools=self.engine.stale_count(),
            sync=self.engine.sync_state.value,
            unsynced=self.engine.sync_status.unsynced_reason,
            unsynced_cause=_loss_cause(self.engine),
            apply_latency=self.apply_latency.stats(),
            revert_latency=self.revert_latency.stats(),
            recalc_latency=self.subscriber_latency.stats(),
            elapsed_seconds=round(time.perf_counter() - self._started, 6),
        )

    def close(self) -> None:
        try:
            if self.checkpoints is not None:
                self.checkpoints.close()
        finally:
            if self.spill is not None:
                self.spill.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _add_once(subscribers: list[_S], subscriber: _S) -> None:
    if subscriber in subscribers:
        raise AlreadySubscribedError(subscriber)
    subscribers.append(subscriber)


def _loss_cause(engine: ArenaEngine) -> str | None:
    loss = engine.sync_status.loss
    return loss.cause.value if loss is not None else None


def open_pipeline(
    config: PipelineConfig,
    *,
    metrics: ArenaMetrics | None = None,
) -> Pipeline:
    """Whitelist, spill, engine and initial state (or checkpoint), ready for the first frame.

    Raises WhitelistError (a BridgeError), StateFileError, SpillError or CheckpointError
    (ArenaErrors).
    """
    with _collection_paused():
        return _open_pipeline(config, metrics)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """A whitelist and a state file make millions of long-lived objects (a mainnet-sized
    one: 250 000 pools, a million ticks) and no garbage cycles: without the cyclic
    collector's passes over the growing heap they load in two thirds of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _open_pipeline(config: PipelineConfig, metrics: ArenaMetrics | None) -> Pipeline:
    whitelist = load_whitelist_file(config.whitelist)
    if not whitelist.pools:
        log.warning("whitelist %s has no usable pool: every update is ignored", config.whitelist)
    with contextlib.ExitStack() as stack:
        spill = checkpoints = None
        if config.spill_path is not None:
            spill = stack.enter_context(RocksSpill(config.spill_path, depth=config.spill_depth))
        if config.checkpoint_path is not None:
            checkpoints = stack.enter_context(
                CheckpointStore(config.checkpoint_path, keep=config.checkpoint_keep)
            )
        engine = ArenaEngine(
            ring_depth=config.ring_depth,
            spill=spill,
            metrics=metrics,
            capacity=max(16, len(whitelist.pools)),
        )
        engine.add_pools(whitelist.pools)
        log.info(
            "whitelist %s: %d pools (%d entries skipped)",
            config.whitelist,
            len(whitelist.pools),
            whitelist.skipped,
        )
        if spill is not None and len(spill):
            # Pre-images of another process's chain would restore the wrong state.
            log.info("clearing %d blocks left in the spill %s", len(spill), spill.path)
            spill.clear()
        pipeline = Pipeline(
            engine,
            spill=spill,
            checkpoints=checkpoints,
            checkpoint_every=config.checkpoint_every,
        )
        pipeline.resumed = seed_engine(
            engine,
            resume=config.resume,
            checkpoints=checkpoints,
            initial_state=config.initial_state,
        )
        stack.pop_all()
    return pipeline
