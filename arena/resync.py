"""Bring pools to their canonical state from the node's JSON-RPC at a block boundary.

Used at start-up (nothing known yet), when pools join the whitelist mid-stream, and
after a loss made the arena unsynced. V2 and V3 pools are hydrated through their own
contracts (see arena.hydration), Curve StableSwap-NG pools through theirs (see
arena.curve_hydration: plain pools only; the others are excluded, counted by reason),
Balancer weighted pools through theirs and the Vault (see arena.balancer_hydration); V4
pools live inside their PoolManager and are read through a StateView lens when its
address is given, else through the PoolManager's own `extsload` (see arena.v4_hydration).

Three steps, so the node can be waited for away from the stream's event loop
(arena.background_resync): `hydration_targets` reads the registry, `fetch_snapshots`
only talks to the node (any thread), `apply_snapshots` writes the engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, final

import msgspec
import numpy as np

from arena.balancer_hydration import (
    BalancerExclusion,
    BalancerPoolSnapshot,
    apply_balancer_states,
    hydrate_balancer_pools,
)
from arena.curve_hydration import CurveSnapshot, read_curve_pools
from arena.engine import ArenaEngine, PoolStatus
from arena.hydration import (
    DEFAULT_BATCH_SIZE,
    NodeRpc,
    PoolSnapshot,
    V2PoolSnapshot,
    hydrate_pools,
)
from arena.hydration import PoolKind as RpcPoolKind
from arena.registry import PoolKind
from arena.v4_hydration import V4Pool, V4PoolSnapshot, hydrate_v4_pools
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


HydrationTarget = tuple[int, str, RpcPoolKind]  # pool index, 0x address, kind


@final
@dataclass(slots=True)
class HydrationTargets:
    """The pools of one hydration by protocol, each with what its reader needs."""

    pairs: list[HydrationTarget] = field(default_factory=list)  # V2 and V3
    v4: list[tuple[int, V4Pool]] = field(default_factory=list)
    curve: list[tuple[int, str]] = field(default_factory=list)  # index, 0x address
    balancer: list[tuple[int, bytes]] = field(default_factory=list)  # index, pool id
    skipped: int = 0  # inactive, or of a kind the RPC cannot read

    @property
    def count(self) -> int:
        return len(self.pairs) + len(self.v4) + len(self.curve) + len(self.balancer)

    def by_protocol(self) -> str:
        return (
            f"{len(self.pairs)} V2/V3, {len(self.v4)} V4, {len(self.curve)} Curve, "
            f"{len(self.balancer)} Balancer"
        )


@final
@dataclass(frozen=True, slots=True)
class FetchedSnapshots:
    """What the node answered for `HydrationTargets`, in their order."""

    pairs: list[PoolSnapshot]
    v4: list[V4PoolSnapshot]
    curve: list[CurveSnapshot]
    balancer: list[BalancerPoolSnapshot | BalancerExclusion]


def hydration_targets(engine: ArenaEngine, indices: Iterable[int]) -> HydrationTargets:
    """The pools of `indices` the RPC can hydrate, and how many it cannot (inactive, a V4
    pool without its tick spacing, a kind without a reader)."""
    targets = HydrationTargets()
    registry = engine.registry
    for index in indices:
        arena_kind = registry.kind_of(index)
        kind = _RPC_KIND.get(arena_kind)
        pool = registry.pools[index]
        if not registry.is_active(index):
            targets.skipped += 1
        elif arena_kind is PoolKind.CURVE_STABLE:
            targets.curve.append((index, "0x" + pool.address.hex()))
        elif arena_kind is PoolKind.BALANCER_WEIGHTED:
            targets.balancer.append((index, pool.key))
        elif arena_kind is PoolKind.V4 and pool.tick_spacing is not None:
            manager = pool.pool_manager or V4_MAINNET_POOL_MANAGER
            v4 = V4Pool(pool_id=pool.key, pool_manager=manager, tick_spacing=pool.tick_spacing)
            targets.v4.append((index, v4))
        elif kind is None:
            targets.skipped += 1
        else:
            targets.pairs.append((index, "0x" + pool.address.hex(), kind))
    return targets


def fetch_snapshots(
    rpc: NodeRpc,
    targets: HydrationTargets,
    block: int,
    *,
    v4_state_view: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> FetchedSnapshots:
    """Every target's state at the end of `block`; touches no engine (any thread)."""
    pairs = [(address, kind) for _, address, kind in targets.pairs]
    return FetchedSnapshots(
        pairs=hydrate_pools(rpc, pairs, block, batch_size=batch_size),
        v4=hydrate_v4_pools(
            rpc,
            [p for _, p in targets.v4],
            block,
            state_view=v4_state_view,
            batch_size=batch_size,
        ),
        curve=(
            read_curve_pools(rpc, [a for _, a in targets.curve], block, batch_size=batch_size)
            if targets.curve
            else []
        ),
        balancer=(
            hydrate_balancer_pools(rpc, [k for _, k in targets.balancer], block)
            if targets.balancer
            else []
        ),
    )


def apply_snapshots(
    engine: ArenaEngine, targets: HydrationTargets, fetched: FetchedSnapshots, block: int
) -> int:
    """Set the fetched pools; Curve and Balancer pools that cannot be modelled are
    excluded (each counted and logged once per reason). Returns how many were excluded."""
    for (index, _, _), snap in zip(targets.pairs, fetched.pairs, strict=True):
        if isinstance(snap, V2PoolSnapshot):
            engine.set_reserves(index, snap.reserve0, snap.reserve1)
        else:
            engine.set_slot0(index, snap.sqrt_price_x96, snap.liquidity, snap.tick, snap.ticks)
    for (index, _), v4_snap in zip(targets.v4, fetched.v4, strict=True):
        engine.set_slot0(
            index, v4_snap.sqrt_price_x96, v4_snap.liquidity, v4_snap.tick, v4_snap.ticks
        )
    excluded = _apply_curve(engine, [i for i, _ in targets.curve], fetched.curve, block)
    balancer = [i for i, _ in targets.balancer]
    excluded += len(balancer) - apply_balancer_states(engine, balancer, fetched.balancer, block)
    return excluded


def _apply_curve(
    engine: ArenaEngine, indices: Sequence[int], snapshots: Sequence[CurveSnapshot], block: int
) -> int:
    excluded = 0
    for index, snap in zip(indices, snapshots, strict=True):
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


def hydration_report(
    targets: HydrationTargets, excluded: int, block: int, started: float
) -> ResyncReport:
    """The report of one hydration begun at `started` (`time.perf_counter()`)."""
    seconds = time.perf_counter() - started
    return ResyncReport(
        block=block,
        pools=targets.count,
        not_hydratable=targets.skipped + excluded,
        seconds=seconds,
    )


def hydrate_indices(
    engine: ArenaEngine,
    w3: NodeRpc,
    indices: Iterable[int],
    block: int,
    *,
    v4_state_view: str | None = None,
) -> ResyncReport:
    """Set the given pools from the node's state at the end of `block` (V4 pools through
    the StateView at `v4_state_view`, or `extsload` when None)."""
    started = time.perf_counter()
    targets = hydration_targets(engine, indices)
    fetched = fetch_snapshots(w3, targets, block, v4_state_view=v4_state_view)
    excluded = apply_snapshots(engine, targets, fetched, block)
    report = hydration_report(targets, excluded, block, started)
    log.info(
        "hydrated %d pools (%s) at block %d in %.2fs",
        report.pools,
        targets.by_protocol(),
        block,
        report.seconds,
    )
    return report


def active_pools(engine: ArenaEngine) -> list[int]:
    return [i for i in range(len(engine.registry)) if engine.registry.is_active(i)]


def finish_resync(engine: ArenaEngine, block: int) -> None:
    """After every active pool was set at `block`: the arena is synced at `block`, its
    ring and spill dropped."""
    engine.mark_synced(block, keep_history=False)


def resync(
    engine: ArenaEngine, w3: NodeRpc, block: int, *, v4_state_view: str | None = None
) -> ResyncReport:
    """Every active pool from the node at `block`; the arena is synced at `block` after.

    The ring and the spill are dropped: pre-images taken before a loss cannot restore
    exactly, so a later revert below `block` makes the pools it touches stale.
    """
    report = hydrate_indices(engine, w3, active_pools(engine), block, v4_state_view=v4_state_view)
    finish_resync(engine, block)
    return report


def pools_to_hydrate(engine: ArenaEngine) -> list[int]:
    """Active V2/V3/V4/Curve/Balancer pools without trustworthy state: never hydrated
    (joined the whitelist) or stale (a revert beyond the history, a divergent tick map)
    and given no final; excluded coin pools are not retried."""
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
