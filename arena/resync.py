"""Bring pools to their canonical state from the node's JSON-RPC at a block boundary.

Used at start-up (nothing known yet), when pools join the whitelist mid-stream, and
after a loss made the arena unsynced. V2 and V3 pools are hydrated through their own
contracts (see arena.hydration), Curve StableSwap-NG pools through theirs (see
arena.curve_hydration: plain pools only; the others are excluded, counted by reason); V4
pools live inside their PoolManager and are read through a StateView lens when its
address is given, else through the PoolManager's own `extsload` (see arena.v4_hydration).
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
from arena.registry import PoolKind
from arena.v4_hydration import V4Pool, hydrate_v4_pools
from exex_bridge.whitelist import V4_MAINNET_POOL_MANAGER

log = logging.getLogger(__name__)

_RPC_KIND: dict[PoolKind, RpcPoolKind] = {PoolKind.V2: "v2", PoolKind.V3: "v3"}
_HYDRATED_KINDS: Final = [
    int(k)
    for k in (
        PoolKind.V2,
        PoolKind.V3,
        PoolKind.V4,
        PoolKind.CURVE_STABLE,
        PoolKind.BALANCER_WEIGHTED,
    )
]


@final
class ResyncReport(msgspec.Struct, frozen=True, kw_only=True):
    block: int
    pools: int
    not_hydratable: int
    seconds: float


def hydrate_indices(
    engine: ArenaEngine,
    w3: Web3,
    indices: Iterable[int],
    block: int,
    *,
    v4_state_view: str | None = None,
) -> ResyncReport:
    """Set the given pools from the node's state at the end of `block` (V4 pools through
    the StateView at `v4_state_view`, or `extsload` when None)."""
    started = time.perf_counter()
    wanted: list[tuple[int, str, RpcPoolKind]] = []
    v4: list[tuple[int, V4Pool]] = []
    curve: list[int] = []
    balancer: list[int] = []
    skipped = 0
    for index in indices:
        arena_kind = engine.registry.kind_of(index)
        kind = _RPC_KIND.get(arena_kind)
        pool = engine.registry.pools[index]
        if not engine.registry.is_active(index):
            skipped += 1
        elif arena_kind is PoolKind.CURVE_STABLE:
            curve.append(index)
        elif arena_kind is PoolKind.BALANCER_WEIGHTED:
            balancer.append(index)
        elif arena_kind is PoolKind.V4 and pool.tick_spacing is not None:
            manager = pool.pool_manager or V4_MAINNET_POOL_MANAGER
            v4.append(
                (
                    index,
                    V4Pool(pool_id=pool.key, pool_manager=manager, tick_spacing=pool.tick_spacing),
                )
            )
        elif kind is None:
            skipped += 1
        else:
            wanted.append((index, "0x" + pool.address.hex(), kind))
    snapshots = hydrate_pools(w3, [(address, kind) for _, address, kind in wanted], block)
    v4_snapshots = hydrate_v4_pools(w3, [p for _, p in v4], block, state_view=v4_state_view)
    for (index, _, _), snap in zip(wanted, snapshots, strict=True):
        if isinstance(snap, V2PoolSnapshot):
            engine.set_reserves(index, snap.reserve0, snap.reserve1)
        else:
            engine.set_slot0(index, snap.sqrt_price_x96, snap.liquidity, snap.tick, snap.ticks)
    for (index, _), v4_snap in zip(v4, v4_snapshots, strict=True):
        engine.set_slot0(
            index, v4_snap.sqrt_price_x96, v4_snap.liquidity, v4_snap.tick, v4_snap.ticks
        )
    skipped += _hydrate_curve(engine, w3, curve, block)
    skipped += len(balancer) - set_balancer_states(engine, w3, balancer, block)
    seconds = time.perf_counter() - started
    pools = len(wanted) + len(v4) + len(curve) + len(balancer)
    log.info(
        "hydrated %d pools (%d V4, %d Curve, %d Balancer) at block %d in %.2fs",
        pools,
        len(v4),
        len(curve),
        len(balancer),
        block,
        seconds,
    )
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


def resync(
    engine: ArenaEngine, w3: Web3, block: int, *, v4_state_view: str | None = None
) -> ResyncReport:
    """Every active pool from the node at `block`; the arena is synced at `block` after.

    The ring and the spill are dropped: pre-images taken before a loss cannot restore
    exactly, so a later revert below `block` makes the pools it touches stale.
    """
    active = [i for i in range(len(engine.registry)) if engine.registry.is_active(i)]
    report = hydrate_indices(engine, w3, active, block, v4_state_view=v4_state_view)
    engine.mark_synced(block, keep_history=False)
    return report


def pools_to_hydrate(engine: ArenaEngine) -> list[int]:
    """Active V2/V3/V4 pools without trustworthy state: never hydrated (joined the whitelist)
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
