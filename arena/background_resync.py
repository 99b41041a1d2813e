"""RPC hydration at block boundaries for a live stream, off the stream's event loop.

The same decisions as `arena.rpc_sync.RpcSync` (resync the whole arena at N-1 when it is
unsynced or elsewhere; hydrate the UNKNOWN/STALE pools when it is synced at N-1), but the
node is never waited for on the loop: when block N opens, the pipeline holds every frame
(`Pipeline.hold_frames`), the snapshots at N-1 are fetched on a worker thread through the
pooled client, and once they are in the loop applies them and replays the held frames in
order. The socket keeps being read meanwhile; no point settles, so nothing is emitted,
before the resync and every block that arrived during it are applied.

RPC failures are counted and logged; the arena is then unsynced and the next block
boundary tries again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final, final

from arena.hydration import DEFAULT_BATCH_SIZE, HydrationError
from arena.pipeline import Pipeline
from arena.resync import (
    FetchedSnapshots,
    HydrationTargets,
    ResyncReport,
    active_pools,
    apply_snapshots,
    fetch_snapshots,
    finish_resync,
    hydration_report,
    hydration_targets,
    pools_to_hydrate,
)
from arena.rpc_sync import resync_reason
from arena.sync_state import LossCause
from exex_bridge import messages as m
from exex_bridge.rpc import JsonRpcProvider, RpcError

log = logging.getLogger(__name__)

# Held frames are replayed this many at a time, the loop free between chunks: the socket
# keeps being read while a long hold is applied (frames read meanwhile queue behind).
REPLAY_CHUNK: Final = 2048


@final
class BackgroundRpcSync:
    """`pipeline.subscribe_block_start(BackgroundRpcSync(pipeline, rpc).before_block)`,
    with `rpc` usable from a worker thread (`exex_bridge.rpc.BlockingRpc`). Runs on the
    stream's event loop. V4 pools are read through the StateView at `v4_state_view`, or
    through their PoolManager's `extsload` when it is None."""

    def __init__(
        self,
        pipeline: Pipeline,
        rpc: JsonRpcProvider,
        *,
        v4_state_view: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.pipeline = pipeline
        self.rpc = rpc
        self.v4_state_view = v4_state_view
        self.batch_size = batch_size
        self.resyncs = 0
        self.hydrations = 0
        self.failures = 0
        self.last_report: ResyncReport | None = None
        self.pending: asyncio.Task[FetchedSnapshots] | None = None
        self.replaying: asyncio.Task[None] | None = None

    def before_block(self, begin: m.BeginBlock) -> None:
        if begin.is_revert:
            return
        engine = self.pipeline.engine
        base = begin.block_number - 1
        if not engine.synced or engine.tip_block != base:
            log.info(
                "resync at block %d before block %d (%s): frames held meanwhile",
                base,
                base + 1,
                resync_reason(engine),
            )
            self._start(base, hydration_targets(engine, active_pools(engine)), resync=True)
            return
        wanted = pools_to_hydrate(engine)
        if wanted:
            log.info("hydrating %d new or stale pools at block %d", len(wanted), base)
            self._start(base, hydration_targets(engine, wanted), resync=False)

    def cancel(self) -> int:
        """Stop waiting (the service stops): the fetch is cancelled and the held frames
        are forgotten; returns how many frames were dropped."""
        for task in (self.pending, self.replaying):
            if task is not None:
                task.cancel()
        self.pending = self.replaying = None
        dropped = self.pipeline.held.clear()
        if dropped:
            log.warning("stopping during an RPC resync: %d held frames not applied", dropped)
        return dropped

    async def _replay(self) -> None:
        while not self.pipeline.release_frames(REPLAY_CHUNK):
            await asyncio.sleep(0)

    def _start(self, block: int, targets: HydrationTargets, *, resync: bool) -> None:
        kind = "resync" if resync else "hydration"
        self.pipeline.hold_frames(f"RPC {kind} at block {block}")
        started = time.perf_counter()
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(
                fetch_snapshots,
                self.rpc,
                targets,
                block,
                v4_state_view=self.v4_state_view,
                batch_size=self.batch_size,
            ),
            name=f"rpc-{kind}-{block}",
        )
        self.pending = task

        def fetched(done: asyncio.Task[FetchedSnapshots]) -> None:
            if done.cancelled() or self.pending is not done:
                return
            self.pending = None
            try:
                engine = self.pipeline.engine
                excluded = apply_snapshots(engine, targets, done.result(), block)
                if resync:
                    finish_resync(engine, block)
                    self.resyncs += 1
                else:
                    self.hydrations += 1
                report = self.last_report = hydration_report(targets, excluded, block, started)
                log.info(
                    "%s: %d pools at block %d in %.2fs; applying %d held frames (%s)",
                    kind,
                    report.pools,
                    block,
                    report.seconds,
                    len(self.pipeline.held.items),
                    targets.by_protocol(),
                )
            except (HydrationError, RpcError, OSError, ValueError, RuntimeError) as exc:
                self.failures += 1
                self.pipeline.engine.mark_unsynced(
                    LossCause.RPC_HYDRATION_FAILED, f"RPC {kind} at block {block} failed: {exc}"
                )
                log.warning(
                    "%s at block %d failed (%s): retrying at the next block", kind, block, exc
                )
            finally:
                self.replaying = asyncio.get_running_loop().create_task(self._replay())

        task.add_done_callback(fetched)
