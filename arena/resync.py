"""Bring pools to their canonical state from the node's JSON-RPC at a block boundary.

Used at start-up (nothing known yet), when pools join the whitelist mid-stream, and
after a loss made the arena unsynced. V2 and V3 pools are hydrated through their own
contracts (see arena.hydration); V4 pools live inside the PoolManager singleton and are
not hydrated here: they stay UNKNOWN or STALE until an epilogue final sets them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import final

import msgspec
import numpy as np

from arena.engine import ArenaEngine, PoolStatus
from arena.hydration import NodeRpc, PoolSnapshot, V2PoolSnapshot, hydrate_pools
from arena.hydration import PoolKind as RpcPoolKind
from arena.pool_status import StaleReason
from arena.registry import PoolKind

log = logging.getLogger(__name__)

_RPC_KIND: dict[PoolKind, RpcPoolKind] = {PoolKind.V2: "v2", PoolKind.V3: "v3"}


@final
class ResyncReport(msgspec.Struct, frozen=True, kw_only=True):
    block: int
    pools: int
    not_hydratable: int
    seconds: float


HydrationTarget = tuple[int, str, RpcPoolKind]  # pool index, 0x address, kind


def hydration_targets(
    engine: ArenaEngine, indices: Iterable[int]
) -> tuple[list[HydrationTarget], int]:
    """The pools of `indices` the RPC can hydrate, and how many it cannot (V4, inactive)."""
    wanted: list[HydrationTarget] = []
    skipped = 0
    for index in indices:
        kind = _RPC_KIND.get(engine.registry.kind_of(index))
        if kind is None or not engine.registry.is_active(index):
            skipped += 1
            continue
        wanted.append((index, "0x" + engine.registry.pools[index].address.hex(), kind))
    return wanted, skipped


def apply_snapshots(
    engine: ArenaEngine, targets: Sequence[HydrationTarget], snapshots: Sequence[PoolSnapshot]
) -> None:
    for (index, _, _), snap in zip(targets, snapshots, strict=True):
        if isinstance(snap, V2PoolSnapshot):
            engine.set_reserves(index, snap.reserve0, snap.reserve1)
        else:
            engine.set_slot0(index, snap.sqrt_price_x96, snap.liquidity, snap.tick, snap.ticks)


def hydrate_indices(
    engine: ArenaEngine, w3: NodeRpc, indices: Iterable[int], block: int
) -> ResyncReport:
    """Set the given pools from the node's state at the end of `block`."""
    started = time.perf_counter()
    wanted, skipped = hydration_targets(engine, indices)
    snapshots = hydrate_pools(w3, [(address, kind) for _, address, kind in wanted], block)
    apply_snapshots(engine, wanted, snapshots)
    seconds = time.perf_counter() - started
    log.info("hydrated %d pools at block %d in %.2fs", len(wanted), block, seconds)
    return ResyncReport(block=block, pools=len(wanted), not_hydratable=skipped, seconds=seconds)


def active_pools(engine: ArenaEngine) -> list[int]:
    return [i for i in range(len(engine.registry)) if engine.registry.is_active(i)]


def finish_resync(engine: ArenaEngine, active: Iterable[int], block: int) -> None:
    """After every active V2/V3 pool was set at `block`: V4 pools stale, the arena synced."""
    for index in active:
        if engine.registry.kind_of(index) is PoolKind.V4:
            engine.mark_stale(
                index, StaleReason.NOT_HYDRATABLE, ": a V4 pool's state is not readable by RPC here"
            )
    engine.mark_synced(block, keep_history=False)


def resync(engine: ArenaEngine, w3: NodeRpc, block: int) -> ResyncReport:
    """Every active pool from the node at `block`; the arena is synced at `block` after.

    The ring and the spill are dropped: pre-images taken before a loss cannot restore
    exactly, so a later revert below `block` makes the pools it touches stale.
    """
    active = active_pools(engine)
    report = hydrate_indices(engine, w3, active, block)
    finish_resync(engine, active, block)
    return report


def pools_to_hydrate(engine: ArenaEngine) -> list[int]:
    """Active V2/V3 pools without trustworthy state: never hydrated (joined the whitelist)
    or stale (a revert beyond the history, a divergent tick map) and given no final."""
    n = len(engine.registry)
    status = engine.status[:n]
    kinds = engine.registry.kind
    wanted = (
        engine.registry.active
        & ((status == PoolStatus.UNKNOWN) | (status == PoolStatus.STALE))
        & ((kinds == PoolKind.V2) | (kinds == PoolKind.V3))
    )
    return [int(i) for i in np.flatnonzero(wanted)]
