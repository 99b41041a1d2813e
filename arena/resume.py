"""Engine <-> `Checkpoint`: what `--checkpoint-every` saves and `--resume` restores.

A checkpoint keys every pool by its stream key, not by its row: the whitelist given at
restart may list pools in another order, add some (they stay unhydrated) or drop some
(their state and pre-images are left out). Pre-images are remapped the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from arena.checkpoint import Checkpoint, CheckpointStore
from arena.engine import ArenaEngine
from arena.errors import ArenaError, CheckpointError
from arena.pool_status import PoolStatus, StaleReason
from arena.registry import COIN_POOL_KINDS
from arena.snapshot_ring import BlockPreImages
from arena.state_file import load_state, read_state_file
from arena.state_table import SWAP_STATE
from arena.sync_state import SyncStatus

log = logging.getLogger(__name__)


class NotCheckpointableError(ArenaError):
    """The engine is not at a trustworthy block: a checkpoint of it would resume lies."""

    def __init__(self, tip: int | None, sync: SyncStatus) -> None:
        self.tip, self.sync = tip, sync
        super().__init__(f"no checkpoint at tip {tip} ({sync})")


def capture_checkpoint(
    engine: ArenaEngine, stream_seq: int | None, source: tuple[int, int] | None = None
) -> Checkpoint:
    """A self-contained copy (nothing shares memory with the engine). `source`: where the
    source stands (a JetStream stream sequence, frames of that message applied), for
    resuming right after it."""
    if engine.tip_block is None or not engine.synced:
        raise NotCheckpointableError(engine.tip_block, engine.sync_status)
    pools = engine.registry.pools
    n = len(pools)
    return Checkpoint(
        block=engine.tip_block,
        stream_seq=stream_seq,
        source_seq=None if source is None else source[0],
        source_frames=None if source is None else source[1],
        pool_keys=[pool.key for pool in pools],
        protocols=bytes(int(pool.protocol) for pool in pools),
        records=engine.table.records[:n].tobytes(),
        status=engine.status[:n].astype(np.uint8).tobytes(),
        tick_maps=engine.ticks.snapshot(),
        ring=[
            BlockPreImages(pre.block, pre.indices.copy(), pre.records.copy())
            for pre in engine.ring.entries_after(-1)
        ],
    )


@dataclass(frozen=True, slots=True)
class RestoreReport:
    block: int
    restored: int  # pools whose state came from the checkpoint
    not_in_checkpoint: int  # whitelisted now, absent then: unhydrated
    dropped: int  # in the checkpoint, not (or no longer as that protocol) whitelisted
    stream_seq: int | None = None  # the producer's stream_seq at the checkpoint
    source_seq: int | None = None  # where the source stood (JetStream stream sequence)
    source_frames: int | None = None  # frames of that message applied (None: all)


def restore_checkpoint(engine: ArenaEngine, checkpoint: Checkpoint) -> RestoreReport:
    """Set the engine (its whitelist already registered) to the checkpoint's block."""
    registry = engine.registry
    mapping = np.full(len(checkpoint.pool_keys), -1, dtype=np.int64)
    for old, key in enumerate(checkpoint.pool_keys):
        new = registry.index_of.get(key)
        if new is None or not registry.is_active(new):
            continue
        if int(registry.pools[new].protocol) != checkpoint.protocols[old]:
            continue
        mapping[old] = new
    kept = np.flatnonzero(mapping >= 0)
    targets = mapping[kept]
    records = np.frombuffer(checkpoint.records, dtype=SWAP_STATE)
    engine.table.scatter(targets, records[kept])
    engine.status[targets] = np.frombuffer(checkpoint.status, dtype=np.uint8)[kept]
    for old, ticks in checkpoint.tick_maps.items():
        if 0 <= old < len(mapping) and mapping[old] >= 0:
            engine.ticks.set_pool(int(mapping[old]), ticks)
    engine.ring.clear()
    for pre in checkpoint.ring:
        indices, pre_records = _remap(mapping, pre)
        engine.ring.push(pre.block, indices, pre_records)
    # When each pool last changed, for a revert deeper than the restored ring: the ring's
    # blocks say it for the pools they touched; any other pool may have changed up to the
    # block before the oldest one held (so such a revert makes it stale, never wrong).
    horizon = checkpoint.ring[0].block - 1 if checkpoint.ring else checkpoint.block
    engine.last_changed[: len(registry)] = horizon
    for pre in checkpoint.ring:
        rows = mapping[pre.indices]
        engine.last_changed[rows[rows >= 0]] = pre.block
    engine.changed.update(targets.tolist())
    engine.mark_synced(checkpoint.block, keep_history=True)
    _stale_coin_pools(engine, targets)
    engine.metrics.stale_pools.set(engine.stale_count())
    active = int(np.count_nonzero(registry.active))
    return RestoreReport(
        block=checkpoint.block,
        restored=len(kept),
        not_in_checkpoint=active - len(kept),
        dropped=len(mapping) - len(kept),
        stream_seq=checkpoint.stream_seq,
        source_seq=checkpoint.source_seq,
        source_frames=checkpoint.source_frames,
    )


def _stale_coin_pools(engine: ArenaEngine, targets: npt.NDArray[np.int64]) -> None:
    """Checkpoints hold the 52-byte records only: a restored multi-coin pool (Curve) has
    no state until it is hydrated again, so it is stale, not quoted (ADR 0017)."""
    kinds = engine.registry.kind[targets]
    coin = np.isin(kinds, [int(k) for k in COIN_POOL_KINDS])
    wanted = targets[coin & (engine.status[targets] != PoolStatus.UNKNOWN)]
    if len(wanted):
        engine.mark_stale_many(
            wanted.tolist(), StaleReason.COIN_STATE_NOT_IN_CHECKPOINT, " (checkpoint restore)"
        )


def _remap(
    mapping: npt.NDArray[np.int64], pre: BlockPreImages
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.void]]:
    """The block's pre-images on today's rows, sorted by row as the ring requires."""
    rows = mapping[pre.indices]
    keep = rows >= 0
    rows, records = rows[keep], pre.records[keep]
    order = np.argsort(rows, kind="stable")
    return rows[order], records[order]


def seed_engine(
    engine: ArenaEngine,
    *,
    resume: bool,
    checkpoints: CheckpointStore | None,
    initial_state: Path | None,
) -> RestoreReport | None:
    """The latest checkpoint with `resume`; else (or if there is none) the initial state
    file, if given. Returns the checkpoint restored, if any."""
    if resume:
        if checkpoints is None:
            raise CheckpointError("-", "resuming needs a checkpoint directory")
        checkpoint = checkpoints.load_latest()
        if checkpoint is not None:
            report = restore_checkpoint(engine, checkpoint)
            log.info(
                "resumed from the checkpoint of block %d: %d pools restored, %d not in it, "
                "%d no longer whitelisted",
                report.block,
                report.restored,
                report.not_in_checkpoint,
                report.dropped,
            )
            return report
        log.warning("no checkpoint in %s to resume from", checkpoints.path)
    if initial_state is not None:
        state = read_state_file(initial_state)
        loaded = load_state(engine, state, str(initial_state))
        log.info("initial state %s: %d pools at block %s", initial_state, loaded, state.block)
    return None
