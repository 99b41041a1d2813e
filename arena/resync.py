"""Bring pools to their canonical state from the node's JSON-RPC at a block boundary.

Used at start-up (nothing known yet), when pools join the whitelist mid-stream, and
after a loss made the arena unsynced. V2 and V3 pools are hydrated through their own
contracts (see arena.hydration), Curve StableSwap-NG pools through theirs (see
arena.curve_hydration: plain pools only; the others are excluded, counted by reason);
V4 pools live inside the PoolManager singleton and are not hydrated here: they stay
UNKNOWN or STALE until an epilogue final sets them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Final, final

import msgspec
import numpy as np
from web3 import Web3

from arena.balancer_hydration import set_balancer_states
from arena.curve_hydration import read_curve_pools
from arena.engine import ArenaEngine, PoolStatus
from arena.hydration import PoolKind as RpcPoolKind
from arena.hydration import V2PoolSnapshot, hydrate_pools
from arena.pool_status import StaleReason
from arena.registry import PoolKind

log = logging.getLogger(__name__)

_RPC_KIND: dict[PoolKind, RpcPoolKind] = {PoolKind.V2: "v2", PoolKind.V3: "v3"}
_HYDRATED_KINDS: Final = [
    int(k) for k in (PoolKind.V2, PoolKind.V3, PoolKind.CURVE_STABLE, PoolKind.BALANCER_WEIGHTED)
]


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
    curve: list[int] = []
    balancer: list[int] = []
    skipped = 0
    for index in indices:
        if engine.registry.kind_of(index) is PoolKind.BALANCER_WEIGHTED:
            if engine.registry.is_active(index):
                balancer.append(index)
            else:
                skipped += 1
            continue
        if engine.registry.kind_of(index) is PoolKind.CURVE_STABLE:
            if engine.registry.is_active(index):
                curve.append(index)
            else:
                skipped += 1
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
    skipped += _hydrate_curve(engine, w3, curve, block)
    skipped += len(balancer) - set_balancer_states(engine, w3, balancer, block)
    seconds = time.perf_counter() - started
    pools = len(wanted) + len(curve) + len(balancer)
    log.info("hydrated %d pools at block %d in %.2fs", pools, block, seconds)
    return ResyncReport(block=block, pools=pools, not_hydratable=skipped, seconds=seconds)


def _hydrate_curve(engine: ArenaEngine, w3: Web3, indices: list[int], block: int) -> int:
    """Set the plain Curve pools among `indices`; exclude the others (each counted and
    logged once per reason). Returns how many were excluded."""
    if not indices:
        return 0
    addresses = ["0x" + engine.registry.pools[i].address.hex() for i in indices]
    excluded = 0
    for index, snap in zip(indices, read_curve_pools(w3, addresses, block), strict=True):
        if snap.state is not None:
            engine.set_coin_state(index, snap.state)
            continue
        excluded += 1
        reason = str(snap.excluded or "unreadable")
        if engine.coins.exclude(index, reason):
            engine.metrics.coin_pools_excluded.labels(reason=reason).inc()
            log.warning(
                "Curve pool %s excluded at block %d: %s: %s",
                snap.address,
                block,
                reason,
                snap.detail,
            )
    return excluded


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
        & np.isin(kinds, _HYDRATED_KINDS)
    )
    coins = engine.coins
    return [int(i) for i in np.flatnonzero(wanted) if coins.exclusion(int(i)) is None]
