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
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any, Final, final

import numpy as np
import numpy.typing as npt

from arena.errors import TickMapError
from arena.metrics import ArenaMetrics
from arena.registry import PoolKind, PoolRegistry
from arena.snapshot_ring import DEFAULT_DEPTH, PreImageSpill, SnapshotRing
from arena.state_table import (
    StateTable,
    pack_records,
    pack_reserves,
    pack_slot0,
    unpack_slot0,
)
from arena.sync_state import SYNCED, UNSEEDED, LossCause, SyncLoss, SyncState, SyncStatus
from arena.tick_maps import U128_MAX, TickMaps
from exex_bridge import messages as m
from exex_bridge.whitelist import WhitelistedPool

log = logging.getLogger(__name__)


class PoolStatus(IntEnum):
    UNKNOWN = 0  # registered, state never hydrated: excluded
    LIVE = 1
    STALE = 2  # state not trustworthy (deep revert, divergent tick map): excluded


# pool index -> (sqrt, liquidity, tick) or (reserve0, reserve1): the block's new records
Work = dict[int, tuple[int, ...]]
_Skipped = tuple[m.PoolUpdateMessage, tuple[int, int] | None, tuple[int, int] | None]


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
        # The last block that changed each pool (or that it was hydrated at): a revert
        # deeper than the ring and the spill cannot list the pools it undoes (reverted
        # blocks carry no V2Sync), so it makes stale every pool changed at or after it.
        self.last_changed: npt.NDArray[np.int64] = np.full(capacity, -1, dtype=np.int64)
        self.ring = SnapshotRing(ring_depth, spill=spill)
        self.metrics = metrics or ArenaMetrics()
        self.tip_block: int | None = None
        self.sync_status: SyncStatus = UNSEEDED
        self.changed: set[int] = set()
        # The status of every pool a block touched that was not LIVE before it, by block:
        # a status is part of a pre-image (reverting the Sync that made a V2 pool LIVE
        # makes it UNKNOWN again; a pre-image taken while a pool was STALE restores STALE).
        self._status_before: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]] = {}
        self._applying = False
        self._prior_status: dict[int, int] = {}  # marked stale while applying a block
        self._update_counters: dict[tuple[m.Protocol, type], Any] = {}
        self._ignored_counters: dict[str, Any] = {}
        self.metrics.ring_bytes.set(self.ring.nbytes)

    # -- whitelist ----------------------------------------------------------------------
    def add_pools(self, pools: Iterable[WhitelistedPool]) -> list[int]:
        """Register pools (between blocks); returns the indices newly activated."""
        added = []
        for pool in pools:
            index, activated = self.registry.add(pool)
            self.table.ensure(index + 1)
            if index >= len(self.status):
                size = max(index + 1, 2 * len(self.status))
                self.status = np.resize(self.status, size)
                self.status[index:] = PoolStatus.UNKNOWN
                self.last_changed = np.resize(self.last_changed, size)
                self.last_changed[index:] = -1
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
            self._set_live(index)
        self.changed.add(index)

    def set_reserves(self, index: int, reserve0: int, reserve1: int) -> None:
        self.table.write(index, pack_reserves(reserve0, reserve1))
        self._set_live(index)
        self.changed.add(index)

    def _set_live(self, index: int) -> None:
        if self.status[index] == PoolStatus.STALE:
            self.metrics.stale_pools.dec()  # O(1): a resync sets every pool
        self.status[index] = PoolStatus.LIVE

    # -- sync state ---------------------------------------------------------------------
    @property
    def sync_state(self) -> SyncState:
        return self.sync_status.state

    @property
    def synced(self) -> bool:
        return self.sync_status.state is SyncState.SYNCED

    def mark_unsynced(self, cause: LossCause, detail: str) -> None:
        """From any state. The loss that made the arena UNSYNCED is kept (and logged) until
        it is synced again; later ones are its consequences or come on top of it."""
        if self.sync_status.state is SyncState.UNSYNCED:
            return
        log.warning("arena unsynced at block %s: %s: %s", self.tip_block, cause.value, detail)
        self.sync_status = SyncStatus(SyncState.UNSYNCED, SyncLoss(cause, detail, self.tip_block))
        self.metrics.synced.set(0)

    def mark_synced(self, block: int, *, keep_history: bool) -> None:
        """State is trustworthy at `block`. Without `keep_history` the ring and spill are
        dropped: pre-images taken before a loss cannot restore exactly."""
        if not keep_history:
            # Every pool's state is now as of `block`, with no pre-image behind it.
            np.maximum(self.last_changed, block, out=self.last_changed)
            self.ring.clear()
            self._status_before.clear()
            if self.ring.spill is not None:
                self.ring.spill.clear()
            self.metrics.ring_blocks.set(0)
        self.tip_block = block
        self.sync_status = SYNCED
        self.metrics.synced.set(1)
        self.metrics.tip_block.set(block)

    def seed_from_stream(self) -> None:
        """UNSEEDED → SYNCED once a block was taken: with nothing loaded, the state starts
        from the stream's first block boundary (pools it never set stay UNKNOWN)."""
        if self.sync_status.state is SyncState.UNSEEDED and self.tip_block is not None:
            self.sync_status = SYNCED
            self.metrics.synced.set(1)

    def mark_stale(self, index: int, reason: str) -> None:
        self.mark_stale_many([index], reason)

    def mark_stale_many(self, indices: Sequence[int], reason: str, detail: str = "") -> None:
        """Exclude pools until an epilogue final or a resync sets them; logged once.

        `reason` labels the metric (a few fixed words); `detail` only goes to the log."""
        self.changed.update(indices)
        fresh = [i for i in indices if self.status[i] != PoolStatus.STALE]
        if not fresh:
            return
        if self._applying:
            for i in fresh:
                self._prior_status.setdefault(i, int(self.status[i]))
        self.status[fresh] = PoolStatus.STALE
        self.metrics.stale_marked.labels(reason=reason).inc(len(fresh))
        keys = ", ".join(self.registry.pools[i].key_hex for i in fresh[:5])
        more = f" and {len(fresh) - 5} more" if len(fresh) > 5 else ""
        log.warning(
            "%d pool(s) marked stale at block %s: %s%s: %s%s",
            len(fresh),
            self.tip_block,
            reason,
            detail,
            keys,
            more,
        )
        self.metrics.stale_pools.set(self.stale_count())

    def stale_count(self) -> int:
        return int(np.count_nonzero(self.status[: len(self.registry)] == PoolStatus.STALE))

    def take_changed(self) -> set[int]:
        changed, self.changed = self.changed, set()
        return changed

    # -- blocks -------------------------------------------------------------------------
    def apply_block(self, begin: m.BeginBlock, events: Sequence[m.PoolUpdateMessage]) -> None:
        """Apply one validated committed block.

        The updates are folded into a work dict first; the table is untouched until the
        pre-images of every touched pool are in the ring, then written back at once.
        """
        started = time.perf_counter()
        self._applying = True
        lookup, operations = self.registry.lookup, _OPERATIONS
        work: Work = {}
        synced: list[int] = []
        touched: set[int] = set()
        seen: dict[tuple[m.Protocol, type], int] = {}
        skipped: list[_Skipped] = []
        for event in events:  # the hot loop: one pass, no per-update allocations but work
            p = event.update
            cls = p.__class__
            key = (event.protocol, cls)
            seen[key] = seen.get(key, 0) + 1
            entry = lookup.get(event.pool_id.value)
            op = operations.get(cls)
            if entry is None or op is None or op[1] != entry[1]:
                skipped.append((event, entry, op))
                continue
            index = entry[0]
            touched.add(index)
            if op[0] == _SWAP:
                work[index] = (p.sqrt_price_x96, p.liquidity, p.tick)  # type: ignore[union-attr]
            elif op[0] == _SYNC:
                work[index] = (p.reserve0, p.reserve1)  # type: ignore[union-attr]
                synced.append(index)
            else:
                self._apply_liquidity(work, index, p)  # type: ignore[arg-type]
        self._applying = False
        self._write_block(begin.block_number, touched, work, synced)
        self._count_updates(seen, skipped)
        self.tip_block = begin.block_number
        self.metrics.blocks_applied.inc()
        self.metrics.apply_seconds.observe(time.perf_counter() - started)
        self._after_block()

    def _write_block(self, block: int, touched: set[int], work: Work, synced: list[int]) -> None:
        """Pre-images (records and non-LIVE statuses) into the ring, then the new records."""
        rows = np.sort(np.fromiter(touched, dtype=np.int64, count=len(touched)))
        self.ring.push(block, rows, self.table.gather(rows))
        self.last_changed[rows] = block
        before = self.status[rows]
        if self._prior_status:  # pools marked stale inside this block: their status before it
            marked = np.fromiter(self._prior_status, np.int64, len(self._prior_status))
            before[np.searchsorted(rows, marked)] = list(self._prior_status.values())
            self._prior_status.clear()
        not_live = before != PoolStatus.LIVE
        if not_live.any():
            self._status_before[block] = (rows[not_live], before[not_live])
            if len(self._status_before) > _STATUS_HISTORY:
                del self._status_before[min(self._status_before)]
        if work:
            written = np.fromiter(work.keys(), dtype=np.int64, count=len(work))
            self.table.scatter_bytes(written, pack_records(work.values()))
        if synced:
            self._live_from_sync(synced)
        self.changed |= touched

    def revert_block(self, begin: m.BeginBlock, events: Sequence[m.PoolUpdateMessage]) -> None:
        """Revert the tip block: restore its pre-images, invert its mints/burns in order."""
        started = time.perf_counter()
        block = begin.block_number
        pre = self.ring.take(block)
        if pre is not None:
            self.table.scatter(pre.indices, pre.records)
            self.changed.update(pre.indices.tolist())
        lookup, operations = self.registry.lookup, _OPERATIONS
        touched: set[int] = set()
        seen: dict[tuple[m.Protocol, type], int] = {}
        skipped: list[_Skipped] = []
        for event in events:
            p = event.update
            cls = p.__class__
            key = (event.protocol, cls)
            seen[key] = seen.get(key, 0) + 1
            entry = lookup.get(event.pool_id.value)
            op = operations.get(cls)
            if entry is None or op is None or op[1] != entry[1]:
                skipped.append((event, entry, op))
                continue
            touched.add(entry[0])
            if op[0] == _LIQUIDITY:
                self._invert_liquidity(entry[0], p)  # type: ignore[arg-type]
        self._count_updates(seen, skipped)
        rows = np.sort(np.fromiter(touched, dtype=np.int64, count=len(touched)))
        if pre is None:
            n = len(self.registry)
            changed_since = np.flatnonzero(
                (self.last_changed[:n] >= block) & (self.status[:n] != PoolStatus.UNKNOWN)
            )
            uncovered, reason = np.union1d(rows, changed_since), "revert_too_deep"
        else:
            uncovered = np.setdiff1d(rows, pre.indices, assume_unique=True)
            reason = "revert_without_pre_image"
        if len(uncovered):
            self.mark_stale_many(uncovered.tolist(), reason, f" (revert of block {block})")
        self.changed |= touched
        statuses = self._status_before.pop(block, None)
        if pre is not None and statuses is not None:
            self._restore_statuses(*statuses)
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

    def _count_updates(
        self, seen: dict[tuple[m.Protocol, type], int], skipped: list[_Skipped]
    ) -> None:
        """Count a block's updates, and those that do not apply to modelled state."""
        for key, n in seen.items():
            child = self._update_counters.get(key)
            if child is None:
                protocol, kind = key[0].name.lower(), key[1].__name__
                child = self.metrics.updates.labels(protocol=protocol, kind=kind)
                self._update_counters[key] = child
            child.inc(n)
        if not skipped:
            return
        reasons: dict[str, int] = {}
        for event, entry, op in skipped:
            if entry is None:
                reason = "unknown_pool"
            elif op is None:
                reason = "unmodelled_update"
            else:
                reason = "kind_mismatch"
                name = type(event.update).__name__
                self.mark_stale(entry[0], f"{name} for a {PoolKind(entry[1]).name} pool")
            reasons[reason] = reasons.get(reason, 0) + 1
        for reason, n in reasons.items():
            child = self._ignored_counters.get(reason)
            if child is None:
                child = self._ignored_counters[reason] = self.metrics.updates_ignored.labels(
                    reason=reason
                )
            child.inc(n)

    def _live_from_sync(self, synced: list[int]) -> None:
        """A Sync carries a V2 pool's whole state: an UNKNOWN or STALE V2 pool is LIVE."""
        indices = np.asarray(synced, dtype=np.int64)
        revived = indices[self.status[indices] != PoolStatus.LIVE]
        if len(revived):
            self.status[revived] = PoolStatus.LIVE
            self.metrics.stale_pools.set(self.stale_count())

    def _restore_statuses(
        self, indices: npt.NDArray[np.int64], statuses: npt.NDArray[np.uint8]
    ) -> None:
        """After restoring a block's pre-images: the pools that were UNKNOWN or STALE
        before it are so again (a revert never makes a pool LIVE)."""
        unknown = indices[statuses == PoolStatus.UNKNOWN]
        self.status[unknown] = PoolStatus.UNKNOWN
        stale = indices[statuses == PoolStatus.STALE].tolist()
        if stale:
            self.mark_stale_many(stale, "stale_before_reverted_block")
        self.metrics.stale_pools.set(self.stale_count())

    def _apply_liquidity(self, work: Work, index: int, p: m.V3Liquidity | m.V4Liquidity) -> None:
        try:
            self.ticks.apply(index, p.tick_lower, p.tick_upper, p.liquidity_delta)
        except TickMapError as exc:
            self.mark_stale(index, str(exc))
            return
        state = work.get(index) or self.table.slot0(index)
        sqrt, liquidity, tick = state
        if p.tick_lower <= tick < p.tick_upper:
            liquidity += p.liquidity_delta
            if not 0 <= liquidity <= U128_MAX:
                liquidity = max(0, min(liquidity, U128_MAX))
                self.mark_stale(index, "active liquidity out of range after mint/burn")
            work[index] = (sqrt, liquidity, tick)

    def _invert_liquidity(self, index: int, p: m.V3Liquidity | m.V4Liquidity) -> None:
        try:
            self.ticks.apply(index, p.tick_lower, p.tick_upper, -p.liquidity_delta)
        except TickMapError as exc:
            self.mark_stale(index, str(exc))

    def _after_block(self) -> None:
        self.metrics.tip_block.set(self.tip_block or 0)
        self.metrics.ring_blocks.set(len(self.ring))

    def _update_pool_gauges(self) -> None:
        self.metrics.pools_tracked.set(int(np.count_nonzero(self.registry.active)))


_STATUS_HISTORY: Final = 1 << 16  # blocks; beyond the spill, reverts mark pools stale anyway
_SWAP: Final = 0
_SYNC: Final = 1
_LIQUIDITY: Final = 2
# payload type -> (operation, the pool kind it applies to)
_OPERATIONS: Final[dict[type, tuple[int, int]]] = {
    m.V2Sync: (_SYNC, PoolKind.V2),
    m.V3Swap: (_SWAP, PoolKind.V3),
    m.V4Swap: (_SWAP, PoolKind.V4),
    m.V3Liquidity: (_LIQUIDITY, PoolKind.V3),
    m.V4Liquidity: (_LIQUIDITY, PoolKind.V4),
}
