"""The arena engine: applies committed blocks, reverts blocks, sets epilogue finals.

The engine is fed whole, validated blocks by the block assembler; it never sees a
partial block. A committed block first writes the pre-images of every pool it touches
into the snapshot ring (one fancy-index copy), then applies its updates in order. A
revert restores those pre-images and inverts the block's mints and burns in the order
received. Pools whose state the engine cannot vouch for become STALE and are excluded
until an epilogue final or a resync sets them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from enum import IntEnum
from typing import Final, final

import numpy as np
import numpy.typing as npt

from arena.errors import TickMapError
from arena.metrics import ArenaMetrics
from arena.registry import PoolKind, PoolRegistry
from arena.snapshot_ring import DEFAULT_DEPTH, PreImageSpill, SnapshotRing
from arena.state_table import (
    StateTable,
    pack_reserves,
    pack_slot0,
    records_from_bytes,
    unpack_slot0,
)
from arena.tick_maps import U128_MAX, TickMaps
from exex_bridge import messages as m
from exex_bridge.whitelist import WhitelistedPool

log = logging.getLogger(__name__)


class PoolStatus(IntEnum):
    UNKNOWN = 0  # registered, state never hydrated: excluded
    LIVE = 1
    STALE = 2  # state not trustworthy (deep revert, divergent tick map): excluded


Work = dict[int, list[int]]  # pool index -> [sqrt, liquidity, tick] or [reserve0, reserve1]
_Handler = Callable[["ArenaEngine", Work, int, m.PoolUpdatePayload], None]


@final
class ArenaEngine:
    def __init__(
        self,
        *,
        ring_depth: int = DEFAULT_DEPTH,
        spill: PreImageSpill | None = None,
        metrics: ArenaMetrics | None = None,
        capacity: int = 1024,
    ) -> None:
        self.registry = PoolRegistry()
        self.table = StateTable(capacity)
        self.ticks = TickMaps()
        self.status: npt.NDArray[np.uint8] = np.zeros(capacity, dtype=np.uint8)
        self.ring = SnapshotRing(ring_depth, spill=spill)
        self.metrics = metrics or ArenaMetrics()
        self.tip_block: int | None = None
        self.unsynced_reason: str | None = None
        self.changed: set[int] = set()
        # Pools that a V2Sync made LIVE, by block: reverting that block makes them UNKNOWN.
        self._became_live: dict[int, int] = {}
        self._block_in_progress = -1
        self.metrics.ring_bytes.set(self.ring.nbytes)

    # -- whitelist ----------------------------------------------------------------------
    def add_pools(self, pools: Iterable[WhitelistedPool]) -> list[int]:
        """Register pools (between blocks); returns the indices newly activated."""
        added = []
        for pool in pools:
            index, activated = self.registry.add(pool)
            self.table.ensure(index + 1)
            if index >= len(self.status):
                self.status = np.resize(self.status, max(index + 1, 2 * len(self.status)))
                self.status[index:] = PoolStatus.UNKNOWN
            if activated:
                self.status[index] = PoolStatus.UNKNOWN
                added.append(index)
        self._update_pool_gauges()
        return added

    def remove_pools(self, keys: Iterable[bytes]) -> list[int]:
        removed = [i for i in (self.registry.remove(k) for k in keys) if i is not None]
        self._update_pool_gauges()
        return removed

    # -- direct state (hydration, resync, checkpoint restore, initial state) ------------
    def set_slot0(
        self,
        index: int,
        sqrt_price_x96: int,
        liquidity: int,
        tick: int,
        ticks: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.table.write(index, pack_slot0(sqrt_price_x96, liquidity, tick))
        if ticks is not None:
            self.ticks.set_pool(index, ticks)
            self.status[index] = PoolStatus.LIVE
        self.changed.add(index)

    def set_reserves(self, index: int, reserve0: int, reserve1: int) -> None:
        self.table.write(index, pack_reserves(reserve0, reserve1))
        self.status[index] = PoolStatus.LIVE
        self.changed.add(index)

    # -- sync state ---------------------------------------------------------------------
    @property
    def synced(self) -> bool:
        return self.unsynced_reason is None

    def mark_unsynced(self, reason: str) -> None:
        if self.unsynced_reason is None:
            log.warning("arena unsynced at block %s: %s", self.tip_block, reason)
        self.unsynced_reason = reason
        self.metrics.synced.set(0)

    def mark_synced(self, block: int, *, keep_history: bool) -> None:
        """State is trustworthy at `block`. Without `keep_history` the ring and spill are
        dropped: pre-images taken before a loss cannot restore exactly."""
        if not keep_history:
            self.ring.clear()
            if self.ring.spill is not None:
                self.ring.spill.clear()
        self.tip_block = block
        self.unsynced_reason = None
        self.metrics.synced.set(1)
        self.metrics.tip_block.set(block)

    def mark_stale(self, index: int, reason: str) -> None:
        self.changed.add(index)
        if self.status[index] != PoolStatus.STALE:
            self.status[index] = PoolStatus.STALE
            self.metrics.stale_marked.labels(reason=reason).inc()
            log.warning(
                "pool %s marked stale at block %s: %s",
                self.registry.pools[index].key_hex,
                self.tip_block,
                reason,
            )
            self.metrics.stale_pools.set(self.stale_count())

    def stale_count(self) -> int:
        return int(np.count_nonzero(self.status[: len(self.registry)] == PoolStatus.STALE))

    def take_changed(self) -> set[int]:
        changed, self.changed = self.changed, set()
        return changed

    # -- blocks -------------------------------------------------------------------------
    def apply_block(self, begin: m.BeginBlock, events: Sequence[m.PoolUpdateMessage]) -> None:
        """Apply one validated committed block: pre-images first, then the updates."""
        started = time.perf_counter()
        plan = self._plan(events)
        touched = np.unique(np.fromiter((p[1] for p in plan), dtype=np.int64, count=len(plan)))
        self.ring.push(begin.block_number, touched, self.table.gather(touched))
        work: Work = {}
        self._block_in_progress = begin.block_number
        for handler, index, payload in plan:
            handler(self, work, index, payload)
        self._write_back(work)
        self.changed.update(touched.tolist())
        self.tip_block = begin.block_number
        self.metrics.blocks_applied.inc()
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        self._after_block()

    def revert_block(self, begin: m.BeginBlock, events: Sequence[m.PoolUpdateMessage]) -> None:
        """Revert the tip block: restore its pre-images, invert its mints/burns in order."""
        started = time.perf_counter()
        block = begin.block_number
        plan = self._plan(events)
        pre = self.ring.take(block)
        covered: set[int] = set()
        if pre is not None:
            self.table.scatter(pre.indices, pre.records)
            covered = set(pre.indices.tolist())
            self.changed.update(covered)
        for handler, index, payload in plan:
            if handler is ArenaEngine._on_liquidity:
                self._invert_liquidity(index, payload)
            if index not in covered:
                reason = "revert_too_deep" if pre is None else "revert_without_pre_image"
                self.mark_stale(index, reason)
            self.changed.add(index)
        for index in [i for i, b in self._became_live.items() if b == block]:
            self.status[index] = PoolStatus.UNKNOWN
            del self._became_live[index]
        self.tip_block = block - 1
        self.metrics.blocks_reverted.inc()
        self.metrics.revert_seconds.observe(time.perf_counter() - started)
        self._after_block()

    def apply_final(self, update: m.ReorgEpilogueUpdate) -> None:
        """An epilogue final: authoritative. Compare, count a divergence, then set."""
        index = self._index(update.pool_id)
        if index is None:
            self.metrics.updates_ignored.labels(reason="final_unknown_pool").inc()
            return
        kind = self.registry.kind_of(index)
        match update:
            case m.Slot0Final(state=s) if kind in (PoolKind.V3, PoolKind.V4):
                final = pack_slot0(s.sqrt_price_x96, s.liquidity, s.tick)
            case m.V2ReservesFinal(reserve0=r0, reserve1=r1) if kind is PoolKind.V2:
                final = pack_reserves(r0, r1)
            case _:
                self.metrics.updates_ignored.labels(reason="final_unmodelled").inc()
                return
        current = self.table.read(index)
        status = PoolStatus(int(self.status[index]))
        if status is PoolStatus.LIVE and current != final:
            self.metrics.divergences.labels(kind=kind.name.lower()).inc()
            log.warning(
                "divergence at block %s, pool %s: arena %s, final %s",
                self.tip_block,
                self.registry.pools[index].key_hex,
                self.describe(index, current),
                self.describe(index, final),
            )
        self.table.write(index, final)
        if status is PoolStatus.STALE:
            self.status[index] = PoolStatus.LIVE
            self.metrics.stale_pools.set(self.stale_count())
        elif status is PoolStatus.UNKNOWN and kind is PoolKind.V2:
            self.status[index] = PoolStatus.LIVE
        self.changed.add(index)

    def describe(self, index: int, record: bytes) -> str:
        if self.registry.kind_of(index) is PoolKind.V2:
            r0, r1 = int.from_bytes(record[:16], "little"), int.from_bytes(record[16:32], "little")
            return f"reserves=({r0}, {r1})"
        sqrt, liq, tick = unpack_slot0(record)
        return f"sqrt_price_x96={sqrt} liquidity={liq} tick={tick}"

    # -- internals ----------------------------------------------------------------------
    def _index(self, pool_id: m.PoolIdentifier) -> int | None:
        index = self.registry.index_of.get(pool_id.value)
        if index is None or not self.registry.is_active(index):
            return None
        return index

    def _plan(
        self, events: Sequence[m.PoolUpdateMessage]
    ) -> list[tuple[_Handler, int, m.PoolUpdatePayload]]:
        """Resolve each update to (handler, pool index, payload); count the rest."""
        plan = []
        seen: Counter[tuple[m.Protocol, type]] = Counter()
        ignored: Counter[str] = Counter()
        index_of = self.registry.index_of
        kinds = self.registry.kind
        active = self.registry.active
        for event in events:
            payload = event.update
            seen[event.protocol, type(payload)] += 1
            index = index_of.get(event.pool_id.value)
            if index is None or not active[index]:
                ignored["unknown_pool"] += 1
                continue
            entry = _HANDLERS.get(type(payload))
            if entry is None:
                ignored["unmodelled_update"] += 1
                continue
            handler, kind = entry
            if kinds[index] != kind:
                ignored["kind_mismatch"] += 1
                self.mark_stale(index, f"{type(payload).__name__} for a {kinds[index]} pool")
                continue
            plan.append((handler, index, payload))
        for (protocol, cls), n in seen.items():
            self.metrics.updates.labels(protocol=protocol.name.lower(), kind=cls.__name__).inc(n)
        for reason, n in ignored.items():
            self.metrics.updates_ignored.labels(reason=reason).inc(n)
        return plan

    def _on_swap(self, work: Work, index: int, payload: m.PoolUpdatePayload) -> None:
        p: m.V3Swap = payload  # type: ignore[assignment]
        work[index] = [p.sqrt_price_x96, p.liquidity, p.tick]

    def _on_sync(self, work: Work, index: int, payload: m.PoolUpdatePayload) -> None:
        p: m.V2Sync = payload  # type: ignore[assignment]
        work[index] = [p.reserve0, p.reserve1]
        if self.status[index] == PoolStatus.UNKNOWN:
            self.status[index] = PoolStatus.LIVE
            self._became_live[index] = self._block_in_progress

    def _on_liquidity(self, work: Work, index: int, payload: m.PoolUpdatePayload) -> None:
        p: m.V3Liquidity = payload  # type: ignore[assignment]
        try:
            self.ticks.apply(index, p.tick_lower, p.tick_upper, p.liquidity_delta)
        except TickMapError as exc:
            self.mark_stale(index, str(exc))
            return
        state = work.get(index)
        if state is None:
            state = work[index] = list(self.table.slot0(index))
        if p.tick_lower <= state[2] < p.tick_upper:
            state[1] += p.liquidity_delta
            if not 0 <= state[1] <= U128_MAX:
                state[1] = max(0, min(state[1], U128_MAX))
                self.mark_stale(index, "active liquidity out of range after mint/burn")

    def _invert_liquidity(self, index: int, payload: m.PoolUpdatePayload) -> None:
        p: m.V3Liquidity = payload  # type: ignore[assignment]
        try:
            self.ticks.apply(index, p.tick_lower, p.tick_upper, -p.liquidity_delta)
        except TickMapError as exc:
            self.mark_stale(index, str(exc))

    def _write_back(self, work: Work) -> None:
        if not work:
            return
        indices = np.fromiter(work.keys(), dtype=np.int64, count=len(work))
        blob = b"".join(pack_slot0(*v) if len(v) == 3 else pack_reserves(*v) for v in work.values())
        self.table.scatter(indices, records_from_bytes(blob))

    def _after_block(self) -> None:
        self.metrics.tip_block.set(self.tip_block or 0)
        self.metrics.ring_blocks.set(len(self.ring))

    def _update_pool_gauges(self) -> None:
        self.metrics.pools_tracked.set(int(np.count_nonzero(self.registry.active)))


_HANDLERS: Final[dict[type, tuple[_Handler, PoolKind]]] = {
    m.V2Sync: (ArenaEngine._on_sync, PoolKind.V2),
    m.V3Swap: (ArenaEngine._on_swap, PoolKind.V3),
    m.V4Swap: (ArenaEngine._on_swap, PoolKind.V4),
    m.V3Liquidity: (ArenaEngine._on_liquidity, PoolKind.V3),
    m.V4Liquidity: (ArenaEngine._on_liquidity, PoolKind.V4),
}
