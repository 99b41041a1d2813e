"""A point-in-time view of whether the arena can be trusted, for logs and probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from arena.engine import ArenaEngine
from arena.sync_state import SyncState, SyncStatus
from exex_bridge.connection_state import ConnectionState

NO_RESYNC_REMEDY: Final = (
    "nothing can resync it without a node: give --rpc URL ([rpc] url), or restart with a "
    "fresh --initial-state or --resume from a checkpoint"
)


@dataclass(frozen=True, slots=True)
class Health:
    """`last_block_age_seconds` is None until a block settles. Healthy means SYNCED and
    connected: before anything is seeded the arena is not ready, after a loss it is not
    trustworthy."""

    sync: SyncStatus
    tip_block: int | None
    stale_pools: int
    last_block_age_seconds: float | None
    connection: ConnectionState
    can_resync: bool = True  # an RPC node is configured to resync from after a loss

    @property
    def synced(self) -> bool:
        return self.sync.synced

    @property
    def unsynced_reason(self) -> str | None:
        return self.sync.unsynced_reason

    @property
    def healthy(self) -> bool:
        return self.synced and self.connection is ConnectionState.CONNECTED

    def reasons(self) -> list[str]:
        """Why the arena is not healthy, each with what would fix it; empty when it is."""
        out = []
        if self.sync.state is SyncState.UNSEEDED:
            out.append("unseeded: no state loaded and no block taken yet")
        elif self.sync.state is SyncState.UNSYNCED:
            remedy = "" if self.can_resync else f"; {NO_RESYNC_REMEDY}"
            out.append(f"unsynced ({self.sync.unsynced_reason}){remedy}")
        if self.connection is not ConnectionState.CONNECTED:
            out.append(f"connection {self.connection.value}")
        return out

    def line(self) -> str:
        age = "-" if self.last_block_age_seconds is None else f"{self.last_block_age_seconds:.1f}s"
        tip = "-" if self.tip_block is None else str(self.tip_block)
        line = (
            f"{self.sync} tip={tip} stale={self.stale_pools} last_block_age={age} "
            f"connection={self.connection.value}"
        )
        if self.sync.state is SyncState.UNSYNCED and not self.can_resync:
            line += f" ({NO_RESYNC_REMEDY})"
        return line


def health_of(
    engine: ArenaEngine,
    *,
    connection: ConnectionState,
    last_block_at: float | None,
    now: float,
    can_resync: bool = True,
) -> Health:
    """`last_block_at` and `now` are readings of the same monotonic clock."""
    return Health(
        sync=engine.sync_status,
        tip_block=engine.tip_block,
        stale_pools=engine.stale_count(),
        last_block_age_seconds=None if last_block_at is None else max(0.0, now - last_block_at),
        connection=connection,
        can_resync=can_resync,
    )


def readiness_reasons(health: Health, max_block_age: float) -> list[str]:
    """Why `/readyz` answers 503: `reasons()`, and a tip older than `max_block_age`
    seconds (or none settled yet). Empty when ready."""
    out = health.reasons()
    age = health.last_block_age_seconds
    if age is None:
        out.append("stale tip: no block settled since the start")
    elif age > max_block_age:
        out.append(f"stale tip: last block settled {age:.1f}s ago (limit {max_block_age:g}s)")
    return out
