"""Bring pools to their canonical state from the node's JSON-RPC at a block boundary.

Used at start-up (nothing known yet), when pools join the whitelist mid-stream, and
after a loss made the arena unsynced. V2 and V3 pools are hydrated through their own
contracts (see arena.hydration); V4 pools live inside the PoolManager singleton and are
not hydrated here: they stay UNKNOWN or STALE until an epilogue final sets them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import final

import msgspec
import numpy as np
from web3 import Web3

from arena.balancer_hydration import set_balancer_states
from arena.engine import ArenaEngine, PoolStatus
from arena.hydration import PoolKind as RpcPoolKind
from arena.hydration import V2PoolSnapshot, hydrate_pools
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


def hydrate_indices(
    engine: ArenaEngine, w3: Web3, indices: Iterable[int], block: int
) -> ResyncReport:
    """Set the given pools from the node's state at the end of `block`."""
    started = time.perf_counter()
    wanted: list[tuple[int, str, RpcPoolKind]] = []
    skipped = 0
    indices = list(indices)
    balancer = [
        i
        for i in indices
        if engine.registry.kind_of(i) is PoolKind.BALANCER_WEIGHTED and engine.registry.is_active(i)
    ]
    set_balancer_states(engine, w3, balancer, block)
    done = set(balancer)
    for index in indices:
        if index in done:
            continue
        kind = _RPC_KIND.get(engine.registry.kind_of(index))
        if kind is None or not engine.registry.is_active(index):
            skipped += 1
            continue
        wanted.append((index, "0x" + engine.registry.pools[index].address.hex(), kind))
    snapshots = hydrate_pools(w3, [(address, kind) for _, address, kind in wanted], block)
    for (index, _, _), snap in zip(wanted, snapshots, strict=True):
        if isinstance(snap, V2PoolSnapshot):
            engine.set_reserves(index, snap.reserve0, snap.reserve1)
        else:
            engine.set_slot0(index, snap.sqrt_price_x96, snap.liquidity, snap.tick, snap.ticks)
    seconds = time.perf_counter() - started
    pools = len(wanted) + len(balancer)
    log.info("hydrated %d pools at block %d in %.2fs", pools, block, seconds)
    return ResyncReport(block=block, pools=pools, not_hydratable=skipped, seconds=seconds)


def resync(engine: ArenaEngine, w3: Web3, block: int) -> ResyncReport:
    """Every active pool from the node at `block`; the arena is synced at `block` after.

    The ring and the spill are dropped: pre-images taken before a loss cannot restore
    exactly, so a later revert below `block` makes the pools it touches stale.
    """
    active = [i for i in range(len(engine.registry)) if engine.registry.is_active(i)]
    report = hydrate_indices(engine, w3, active, block)
    for index in active:
        if engine.registry.kind_of(index) is PoolKind.V4:
            engine.mark_stale(
                index, StaleReason.NOT_HYDRATABLE, ": a V4 pool's state is not readable by RPC here"
            )
    engine.mark_synced(block, keep_history=False)
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
        & ((kinds == PoolKind.V2) | (kinds == PoolKind.V3) | (kinds == PoolKind.BALANCER_WEIGHTED))
    )
    return [int(i) for i in np.flatnonzero(wanted)]
