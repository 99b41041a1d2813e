"""Compare the arena's state with the contracts' at a block, through independent eth_calls.

The node side is read by `arena.hydration.hydrate_pools` (slot0, liquidity, every
initialized tick's liquidityNet/liquidityGross, V2 getReserves) pinned to one block; the
arena side straight from the engine's tables. Every active V2/V3 pool is compared, and
every active V4 pool through the StateView lens when its address is given
(`arena.v4_hydration`); a pool the arena does not hold LIVE counts as a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from arena.engine import ArenaEngine, PoolStatus
from arena.hydration import BlockRef, PoolKind, V2PoolSnapshot, hydrate_pools
from arena.registry import PoolKind as ArenaKind
from arena.v4_hydration import V4Pool, hydrate_v4_pools
from exex_bridge.whitelist import V4_MAINNET_POOL_MANAGER

_RPC_KIND: dict[ArenaKind, PoolKind] = {ArenaKind.V2: "v2", ArenaKind.V3: "v3"}


@dataclass(frozen=True, slots=True)
class Mismatch:
    block: int
    pool: str
    field: str
    arena: object
    node: object

    def line(self) -> str:
        where = f"block {self.block} pool {self.pool} {self.field}"
        return f"{where}: arena {self.arena} node {self.node}"


def compare_with_node(
    engine: ArenaEngine,
    w3: Web3,
    block: BlockRef,
    *,
    ticks: bool = True,
    v4_state_view: str | None = None,
) -> list[Mismatch]:
    """Every difference between the arena and the node at `block` (empty: identical)."""
    wanted: list[tuple[int, str, PoolKind]] = []
    for index, pool in enumerate(engine.registry.pools):
        kind = _RPC_KIND.get(engine.registry.kind_of(index))
        if kind is not None and engine.registry.is_active(index):
            wanted.append((index, "0x" + pool.address.hex(), kind))
    snapshots = hydrate_pools(w3, [(address, kind) for _, address, kind in wanted], block)
    out: list[Mismatch] = []
    for (index, address, _), snap in zip(wanted, snapshots, strict=True):
        number = snap.block
        status = PoolStatus(int(engine.status[index]))
        if status is not PoolStatus.LIVE:
            out.append(Mismatch(number, address, "status", status.name, "LIVE"))
            continue
        pairs: list[tuple[str, object, object]]
        if isinstance(snap, V2PoolSnapshot):
            pairs = [("reserves", engine.table.reserves(index), (snap.reserve0, snap.reserve1))]
        else:
            sqrt, liquidity, tick = engine.table.slot0(index)
            pairs = [
                ("sqrt_price_x96", sqrt, snap.sqrt_price_x96),
                ("liquidity", liquidity, snap.liquidity),
                ("tick", tick, snap.tick),
            ]
            if ticks:
                held = {t: (v[0], v[1]) for t, v in engine.ticks.ticks(index).items()}
                pairs += _tick_pairs(held, snap.ticks)
        out += [Mismatch(number, address, f, a, n) for f, a, n in pairs if a != n]
    if v4_state_view is not None:
        out += _compare_v4(engine, w3, block, v4_state_view, ticks=ticks)
    return out


def _compare_v4(
    engine: ArenaEngine, w3: Web3, block: BlockRef, state_view: str, *, ticks: bool
) -> list[Mismatch]:
    wanted: list[tuple[int, V4Pool]] = []
    for index, pool in enumerate(engine.registry.pools):
        if engine.registry.kind_of(index) is ArenaKind.V4 and engine.registry.is_active(index):
            manager = pool.pool_manager or V4_MAINNET_POOL_MANAGER
            spacing = pool.tick_spacing or 1
            wanted.append(
                (index, V4Pool(pool_id=pool.key, pool_manager=manager, tick_spacing=spacing))
            )
    snapshots = hydrate_v4_pools(w3, [p for _, p in wanted], block, state_view=state_view)
    out: list[Mismatch] = []
    for (index, _), snap in zip(wanted, snapshots, strict=True):
        status = PoolStatus(int(engine.status[index]))
        if status is not PoolStatus.LIVE:
            out.append(Mismatch(snap.block, snap.pool_id, "status", status.name, "LIVE"))
            continue
        sqrt, liquidity, tick = engine.table.slot0(index)
        pairs: list[tuple[str, object, object]] = [
            ("sqrt_price_x96", sqrt, snap.sqrt_price_x96),
            ("liquidity", liquidity, snap.liquidity),
            ("tick", tick, snap.tick),
        ]
        if ticks:
            held = {t: (v[0], v[1]) for t, v in engine.ticks.ticks(index).items()}
            pairs += _tick_pairs(held, snap.ticks)
        out += [Mismatch(snap.block, snap.pool_id, f, a, n) for f, a, n in pairs if a != n]
    return out


def _tick_pairs(
    held: dict[int, tuple[int, int]], node: dict[int, tuple[int, int]]
) -> list[tuple[str, object, object]]:
    """One (field, arena, node) per tick whose (net, gross) differ, missing ones as None."""
    return [
        (f"tick[{t}]", held.get(t), node.get(t))
        for t in sorted(held.keys() | node.keys())
        if held.get(t) != node.get(t)
    ]
