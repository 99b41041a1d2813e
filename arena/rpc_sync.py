"""Hydration from the node's RPC at block boundaries, for a live stream.

The stream has no replay: a consumer that starts, or loses messages, knows nothing of the
state the next block builds on. `RpcSync.before_block` runs when a committed block N
opens (before any of it is applied) and makes the state exact at N-1:

- the whole arena (`arena.resync.resync`) when it was never synced, is unsynced after a
  loss, or stands at another block than N-1;
- only the pools that joined the whitelist since (UNKNOWN), when it is synced at N-1.

RPC failures are counted and logged; the arena then stays unsynced and the next block
boundary tries again.
"""

from __future__ import annotations

import logging
from typing import final

from web3 import HTTPProvider, Web3

from arena.engine import ArenaEngine
from arena.hydration import HydrationError
from arena.resync import ResyncReport, hydrate_indices, pools_to_hydrate, resync
from arena.sync_state import LossCause, SyncState
from exex_bridge import messages as m

log = logging.getLogger(__name__)


def web3_for(url: str, timeout_s: float = 60.0) -> Web3:
    return Web3(HTTPProvider(url, request_kwargs={"timeout": timeout_s}))


def _resync_reason(engine: ArenaEngine) -> str:
    status = engine.sync_status
    if status.loss is not None:
        return str(status.loss)
    if status.state is SyncState.UNSEEDED:
        return "nothing seeded yet"
    return f"state at block {engine.tip_block}"


@final
class RpcSync:
    """`pipeline.subscribe_block_start(RpcSync(engine, w3).before_block)`.

    V4 pools are read through the StateView at `v4_state_view`, or through their
    PoolManager's `extsload` when it is None."""

    def __init__(
        self, engine: ArenaEngine, w3: Web3 | str, *, v4_state_view: str | None = None
    ) -> None:
        self.engine = engine
        self.v4_state_view = v4_state_view
        self.w3 = w3 if isinstance(w3, Web3) else web3_for(w3)
        self.resyncs = 0
        self.hydrations = 0
        self.failures = 0
        self.last_report: ResyncReport | None = None

    def before_block(self, begin: m.BeginBlock) -> None:
        if begin.is_revert:
            return
        base = begin.block_number - 1
        engine = self.engine
        try:
            if not engine.synced or engine.tip_block != base:
                reason = _resync_reason(engine)
                log.info("resync at block %d before block %d (%s)", base, base + 1, reason)
                self.last_report = resync(engine, self.w3, base, v4_state_view=self.v4_state_view)
                self.resyncs += 1
                return
            wanted = pools_to_hydrate(engine)
            if wanted:
                log.info("hydrating %d new or stale pools at block %d", len(wanted), base)
                self.last_report = hydrate_indices(
                    engine, self.w3, wanted, base, v4_state_view=self.v4_state_view
                )
                self.hydrations += 1
        except (HydrationError, OSError, ValueError) as exc:
            self.failures += 1
            engine.mark_unsynced(
                LossCause.RPC_HYDRATION_FAILED, f"RPC hydration at block {base} failed: {exc}"
            )
            log.warning("hydration at block %d failed (%s): retrying at the next block", base, exc)
