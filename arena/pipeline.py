"""The glue `arena replay` and `arena run` share: frames in, settled states out.

`open_pipeline` builds an engine (with its RocksDB spill and metrics), registers the
whitelist and optionally seeds an initial state. `Pipeline.feed_frame` decodes one frame
payload and hands it to the block assembler; every settled point that is trustworthy
goes to `on_settled`, the hook the pathfinder attaches to.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, final

from arena.block_assembler import BlockAssembler, Settled
from arena.checkpoint import DEFAULT_KEEP, CheckpointStore
from arena.engine import ArenaEngine
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
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.errors import CodecError
from exex_bridge.whitelist import PROTOCOL_SHORT, load_whitelist_file

log = logging.getLogger(__name__)

SettledHook = Callable[[Settled], None]
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
        on_settled: SettledHook | None = None,
    ) -> None:
        self.engine = engine
        self.metrics = engine.metrics
        self.assembler = BlockAssembler(engine)
        self.spill = spill
        self.checkpoints = checkpoints
        self.checkpoint_every = checkpoint_every if checkpoints is not None else 0
        self.on_settled = on_settled
        # Called when a block opens (before any of it applies): RPC hydration hooks here.
        self.block_start: Callable[[m.BeginBlock], None] | None = None
        # Sees every settled point, trustworthy or not (the path recalculation needs the
        # changes of untrusted points too; it emits nothing from them).
        self.pathfinder: SettledHook | None = None
        self.resumed: RestoreReport | None = None
        self._since_checkpoint = 0
        self.frames = 0
        self.decode_errors = 0
        self.settled_points = 0
        self.last_settled: Settled | None = None
        self.updates_by_protocol: Counter[m.Protocol] = Counter()
        self.apply_latency = LatencySamples()
        self.revert_latency = LatencySamples()
        self._started = time.perf_counter()

    @property
    def at_boundary(self) -> bool:
        """No block and no reorg envelope is open: stopping here loses nothing."""
        return self.assembler.open_block is None and not self.assembler.in_reorg

    def feed_frame(self, payload: bytes | memoryview) -> Settled | None:
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
        return self.feed(msg)

    def feed(self, msg: m.ControlMessage) -> Settled | None:
        if isinstance(msg, m.EndBlock):
            settled = self._feed_end(msg)
        else:
            if isinstance(msg, m.PoolUpdate):
                self.updates_by_protocol[msg.event.protocol] += 1
            settled = self.assembler.feed(msg)
            opened = self.assembler.open_block
            if self.block_start is not None and opened is not None and opened.begin is msg:
                self.block_start(opened.begin)
        if settled is not None:
            self._settled(settled)
        return settled

    def on_connection_lost(self) -> None:
        self.assembler.on_connection_lost()

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
        return settled

    def _settled(self, settled: Settled) -> None:
        self.settled_points += 1
        self.last_settled = settled
        if self.spill is not None:
            self.metrics.spill_blocks.set(len(self.spill))
        if self.pathfinder is not None:
            self.pathfinder(settled)
        if not settled.trustworthy:
            return
        if self.checkpoint_every:
            self._since_checkpoint += 1
            if self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint_now()
        if self.on_settled is not None:
            self.on_settled(settled)

    def checkpoint_now(self) -> int | None:
        """Save a checkpoint if there is a store and the state is trustworthy at a block
        boundary; returns its block."""
        if self.checkpoints is None or not self.at_boundary:
            return None
        try:
            checkpoint = capture_checkpoint(self.engine, self.assembler.last_seq)
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
            updates_by_protocol={
                PROTOCOL_SHORT[p]: n for p, n in sorted(self.updates_by_protocol.items())
            },
            discarded_by_reason=samples_by_label(registry, "arena_block_discarded_total", "reason"),
            divergences_by_kind=samples_by_label(registry, "arena_reorg_divergences_total", "kind"),
            stale_pools=self.engine.stale_count(),
            unsynced=self.engine.unsynced_reason,
            apply_latency=self.apply_latency.stats(),
            revert_latency=self.revert_latency.stats(),
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


def open_pipeline(
    config: PipelineConfig,
    *,
    metrics: ArenaMetrics | None = None,
    on_settled: SettledHook | None = None,
) -> Pipeline:
    """Whitelist, spill, engine and initial state (or checkpoint), ready for the first frame.

    Raises WhitelistError (a BridgeError), StateFileError, SpillError or CheckpointError
    (ArenaErrors).
    """
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
            on_settled=on_settled,
        )
        pipeline.resumed = seed_engine(
            engine,
            resume=config.resume,
            checkpoints=checkpoints,
            initial_state=config.initial_state,
        )
        stack.pop_all()
    return pipeline
