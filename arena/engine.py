"""The arena engine: applies committed blocks, reverts blocks, sets epilogue finals.

The engine is fed whole, validated blocks by the block assembler; it never sees a
partial block. A committed block keeps the pre-images of every pool it touches (one
fancy-index copy) in the snapshot ring and applies its updates in order. A revert
restores those pre-images and inverts the block's mints and burns in the order received.
Either takes effect whole or not at all. Pools whose state the engine cannot vouch for
become STALE and are excluded until an epilogue final or a resync sets them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Final, final

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from arena.block_events import (
    COIN_UPDATES,
    BlockEvents,
    UpdateCounters,
    classify,
    publish,
    resolve_stale_counts,
    sorted_rows,
)
from arena.block_staging import UndoSteps, invert_liquidity, stage_records
from arena.coin_pools import CoinPoolState, CoinPoolStore
from arena.coin_staging import stage_coin_states
from arena.columnar_block import NO_HOT_RECORDS, HotRecords, split_block
from arena.metrics import ArenaMetrics
from arena.pool_keys import PoolKeyIndex
from arena.pool_status import PoolStatus, StaleLabel, StaleReason, StatusChanges, StatusHistory
from arena.registry import PoolKind, PoolRegistry
from arena.snapshot_ring import DEFAULT_DEPTH, BlockPreImages, PreImageSpill, SnapshotRing
from arena.state_table import (
    StateTable,
    pack_records,
    pack_reserves,
    pack_slot0,
    unpack_slot0,
)
from arena.sync_state import SYNCED, UNSEEDED, LossCause, SyncLoss, SyncState, SyncStatus
from arena.tick_journal import TickJournal
from arena.tick_maps import TickMaps
from exex_bridge import messages as m
from exex_bridge.whitelist import WhitelistedPool

__all__ = ["ArenaEngine", "PoolStatus"]

log = logging.getLogger(__name__)

# Plain ints for NumPy comparisons (an IntEnum operand costs microseconds per compare).
_UNKNOWN: Final = int(PoolStatus.UNKNOWN)
_LIVE: Final = int(PoolStatus.LIVE)
_STALE: Final = int(PoolStatus.STALE)


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
        self._pool_keys = PoolKeyIndex(self.registry)
        self.table = StateTable(capacity)
        self.ticks = TickMaps()
        # Multi-coin pools (Curve StableSwap-NG): their state, journaled per block.
        self.coins = CoinPoolStore()
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
        self._status_before = StatusHistory()
        self._counters = UpdateCounters(self.metrics)
        self.metrics.ring_bytes.set(self.ring.nbytes)

    # -- whitelist ----------------------------------------------------------------------
    def add_pools(self, pools: Iterable[WhitelistedPool]) -> list[int]:
        """Register pools (between blocks); returns the indices newly activated."""
        added = []
        for pool in pools:
            index, activated = self.registry.add(pool)
            if index >= len(self.status):
                size = max(index + 1, 2 * len(self.status))
                self.status = np.resize(self.status, size)
                self.status[index:] = _UNKNOWN
                self.last_changed = np.resize(self.last_changed, size)
                self.last_changed[index:] = -1
            if activated:
                self.status[index] = _UNKNOWN
                added.append(index)
        self.table.ensure(len(self.registry))
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

    def set_coin_state(self, index: int, state: CoinPoolState) -> None:
        """A multi-coin pool's whole state (hydration, resync): it becomes LIVE."""
        self.coins.set(index, state)
        self._set_live(index)
        self.changed.add(index)

    def set_states(
        self,
        indices: npt.NDArray[np.int64],
        records: bytes,
        ticks: dict[int, dict[int, tuple[int, int]]],
    ) -> None:
        """Hydrate many pools at once (an initial state): `records` holds their 52-byte
        records in the order of `indices`, `ticks` the tick maps of the V3/V4 ones. Each
        pool becomes LIVE, as `set_reserves`, or `set_slot0` with its ticks, makes it."""
        self.table.scatter_bytes(indices, records)
        for index, pool_ticks in ticks.items():
            self.ticks.set_pool(index, pool_ticks)
        unique = np.unique(indices)
        was_stale = int(np.count_nonzero(self.status[unique] == _STALE))
        if was_stale:
            self.metrics.stale_pools.dec(was_stale)
        self.status[unique] = _LIVE
        self.changed.update(unique.tolist())

    def _set_live(self, index: int) -> None:
        if self.status[index] == _STALE:
            self.metrics.stale_pools.dec()  # O(1): a resync sets every pool
        self.status[index] = _LIVE

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
            self._drop_history(block)
        self.tip_block = block
        self.sync_status = SYNCED
        self.metrics.synced.set(1)
        self.metrics.tip_block.set(block)

    def skip_to(self, block: int) -> None:
        """The stream moved on to `block` through blocks the arena did not take (a reorg
        envelope skipped after a loss). Only while not SYNCED: the tip follows the
        stream, the pre-images behind it (of a chain being abandoned) are dropped, and
        the state stays untrusted until a resync."""
        if self.sync_status.state is SyncState.SYNCED:
            raise ValueError("skip_to is for an arena that has lost data")
        if self.tip_block is None:
            return  # nothing taken yet: the next block starts the stream
        self._drop_history(block)
        self.tip_block = block
        self.metrics.tip_block.set(block)

    def _drop_history(self, block: int) -> None:
        # Every pool's state is now as of `block`, with no pre-image behind it.
        np.maximum(self.last_changed, block, out=self.last_changed)
        self.ring.clear()
        self._status_before.clear()
        self.coins.drop_history()
        if self.ring.spill is not None:
            self.ring.spill.clear()
        self.metrics.ring_blocks.set(0)

    def seed_from_stream(self) -> None:
        """UNSEEDED → SYNCED once a block was taken: with nothing loaded, the state starts
        from the stream's first block boundary (pools it never set stay UNKNOWN)."""
        if self.sync_status.state is SyncState.UNSEEDED and self.tip_block is not None:
            self.sync_status = SYNCED
            self.metrics.synced.set(1)

    def mark_stale(self, index: int, reason: StaleLabel, detail: str = "") -> None:
        self.mark_stale_many([index], reason, detail)

    def mark_stale_many(self, indices: Sequence[int], reason: StaleLabel, detail: str = "") -> None:
        """Exclude pools until an epilogue final or a resync sets them; logged once.

        `reason` labels the metric (a few fixed words); `detail` only goes to the log."""
        self.changed.update(indices)
        fresh = [i for i in indices if self.status[i] != PoolStatus.STALE]
        if not fresh:
            return
        self.status[fresh] = PoolStatus.STALE
        self.metrics.stale_marked.labels(reason=reason).inc(len(fresh))
        self._log_stale(fresh, reason, detail)
        self.metrics.stale_pools.set(self.stale_count())

    def _log_stale(self, fresh: Sequence[int], reason: StaleLabel, detail: str) -> None:
        keys = ", ".join(self.registry.pools[i].key_hex for i in fresh[:5])
        more = f" and {len(fresh) - 5} more" if len(fresh) > 5 else ""
        log.warning(
            "%d pool(s) marked stale at block %s: %s%s: %s%s",
            len(fresh),
            self.tip_block,
            reason.value,
            detail,
            keys,
            more,
        )

    def stale_count(self) -> int:
        return int(np.count_nonzero(self.status[: len(self.registry)] == PoolStatus.STALE))

    def take_changed(self) -> set[int]:
        changed, self.changed = self.changed, set()
        return changed

    # -- blocks -------------------------------------------------------------------------
    def apply_block(
        self,
        begin: m.BeginBlock,
        events: Sequence[m.PoolUpdateMessage],
        payloads: Sequence[bytes] | None = None,
    ) -> None:
        """Apply one validated committed block: all of it, or on any error none of it.

        With `payloads` (the frame each event was decoded from) the block's hot swaps and
        syncs are read as columns (columnar_block.py); without, every update goes through
        the reference fold. Both give the same result.

        The block's new records, tick-map changes and statuses are worked out first; then
        the state is written, keeping what each write replaced, and the pre-images go into
        the ring last, as that may spill to RocksDB. An error at any step puts back what
        was written and propagates. Metrics move once the block is in.
        """
        started = time.perf_counter()
        block = begin.block_number
        found, hot = self._split(events, payloads)
        statuses = StatusChanges(self.status)
        undo: UndoSteps = []
        try:
            coin_work, whole, coin_refused = stage_coin_states(found, self.coins)
            counts = self._counters.resolve(found, undo)
            journal = TickJournal(self.ticks)
            undo.append(journal.undo)
            work, synced, refused = stage_records(found, self.table, journal, statuses)
            synced.extend(whole)  # a CurveLiquidity is a hydrated pool's whole state
            refused.extend(coin_refused)
            touched = set(found.indices)
            if len(hot.pools):
                touched.update(hot.pools.tolist())
                synced.extend(hot.synced.tolist())
            rows = sorted_rows(touched)
            pre_images = self.table.gather(rows)
            before = self.status[rows]
            not_live = before != _LIVE
            any_not_live = bool(not_live.any())
            if synced and any_not_live:  # a Sync is a V2 pool's whole state: LIVE
                indices = np.asarray(synced, dtype=np.int64)
                statuses.set(indices[self.status[indices] != _LIVE], PoolStatus.LIVE)
            for index, reason, detail in (*found.mismatched, *refused):
                statuses.mark_stale((index,), reason, f": {detail}")
            stale_counts = resolve_stale_counts(self.metrics, statuses.newly_stale, undo)
            undo.append(lambda: self.table.scatter(rows, pre_images))
            if work:
                written = np.fromiter(work.keys(), dtype=np.int64, count=len(work))
                self.table.scatter_bytes(written, pack_records(work.values()))
            if len(hot.pools):
                self.table.scatter(hot.pools, hot.records)
            if any_not_live:
                self._status_before.push(block, (rows[not_live], before[not_live]), undo)
            self._write_common(undo, block, rows, statuses, touched)
            self.coins.commit(block, coin_work, undo, timestamp=begin.block_timestamp)
            self.ring.push(block, rows, pre_images)
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        # Entries older than the blocks the ring and the spill can hold are never read.
        spill = self.ring.spill
        self._status_before.keep_newest(self.ring.depth + (spill.depth if spill else 0))
        self.coins.keep_newest(self.ring.depth + (spill.depth if spill else 0))
        self._publish(counts, stale_counts, statuses, f" (block {block})")
        self.metrics.blocks_applied.inc()
        self.metrics.apply_seconds.observe(time.perf_counter() - started)

    def revert_block(self, begin: m.BeginBlock, events: Sequence[m.PoolUpdateMessage]) -> None:
        """Revert the tip block: restore its pre-images, invert its mints/burns in order.

        Reverts classify with the reference: the pre-images are one copy whatever the
        updates, and reading the frames as columns measured slower here (ADR 0009).

        Atomic as `apply_block` is: the pre-images leave the ring (or the spill) last."""
        started = time.perf_counter()
        block = begin.block_number
        pre = self.ring.peek(block)
        found = classify(events, self.registry.lookup)
        statuses = StatusChanges(self.status)
        undo: UndoSteps = []
        try:
            counts = self._counters.resolve(found, undo)
            journal = TickJournal(self.ticks)
            undo.append(journal.undo)
            invert_liquidity(found, journal, statuses)
            for index, reason, detail in found.mismatched:
                statuses.mark_stale((index,), reason, f": {detail}")
            touched = set(found.indices)
            self._stage_revert_statuses(block, pre, sorted_rows(touched), statuses)
            self._revert_coin_states(block, found, statuses, undo)
            stale_counts = resolve_stale_counts(self.metrics, statuses.newly_stale, undo)
            if pre is not None:
                current = self.table.gather(pre.indices)
                undo.append(lambda: self.table.scatter(pre.indices, current))
                self.table.scatter(pre.indices, pre.records)
                touched.update(pre.indices.tolist())
            self._status_before.pop(block, undo)
            self._write_common(undo, block - 1, None, statuses, touched)
            self.ring.take(block)
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        self._publish(counts, stale_counts, statuses, f" (revert of block {block})")
        self.metrics.blocks_reverted.inc()
        self.metrics.revert_seconds.observe(time.perf_counter() - started)

    def _revert_coin_states(
        self, block: int, found: BlockEvents, statuses: StatusChanges, undo: UndoSteps
    ) -> None:
        """Put back the multi-coin states the block changed. A pool with an update in the
        block but no pre-image of it (the block is past the journal, or the pool was
        hydrated after the block, its update then ignored) is stale: its state is of
        after the block."""
        restored = self.coins.revert(block, undo) or frozenset()
        if not found.coin_updates:
            return
        lost = {
            i
            for i, p in zip(found.indices, found.payloads, strict=True)
            if p.__class__ in COIN_UPDATES and i in self.coins and i not in restored
        }
        if lost:
            statuses.mark_stale(
                sorted(lost),
                StaleReason.REVERT_WITHOUT_PRE_IMAGE,
                f" (revert of block {block}: no multi-coin pre-image)",
            )

    def _split(
        self, events: Sequence[m.PoolUpdateMessage], payloads: Sequence[bytes] | None
    ) -> tuple[BlockEvents, HotRecords]:
        if payloads is None:
            return classify(events, self.registry.lookup), NO_HOT_RECORDS
        return split_block(
            events, payloads, self._pool_keys, self.registry.lookup, len(self.registry)
        )

    def _stage_revert_statuses(
        self,
        block: int,
        pre: BlockPreImages | None,
        rows: npt.NDArray[np.int64],
        statuses: StatusChanges,
    ) -> None:
        """Pools the revert cannot restore become stale; with the pre-images, the pools
        that were UNKNOWN or STALE before the block are so again (never LIVE)."""
        if pre is None:
            n = len(self.registry)
            changed_since = np.flatnonzero(
                (self.last_changed[:n] >= block) & (self.status[:n] != _UNKNOWN)
            )
            uncovered, reason = np.union1d(rows, changed_since), StaleReason.REVERT_TOO_DEEP
        else:
            uncovered = np.setdiff1d(rows, pre.indices, assume_unique=True)
            reason = StaleReason.REVERT_WITHOUT_PRE_IMAGE
        if len(uncovered):
            statuses.mark_stale(uncovered.tolist(), reason, f" (revert of block {block})")
        history = self._status_before.get(block)
        if pre is not None and history is not None:
            indices, before = history
            statuses.set(indices[before == _UNKNOWN], PoolStatus.UNKNOWN)
            stale = indices[before == _STALE].tolist()
            statuses.mark_stale(stale, StaleReason.STALE_BEFORE_REVERTED_BLOCK)

    def _write_common(
        self,
        undo: UndoSteps,
        block: int,
        rows: npt.NDArray[np.int64] | None,
        statuses: StatusChanges,
        touched: set[int],
    ) -> None:
        """Statuses, `last_changed` (of an applied block's `rows`), `changed` and the tip,
        each with its undo step; `block` is the new tip. `touched` becomes `changed` or
        part of it."""
        if statuses:
            indices, overwritten = statuses.write()
            undo.append(lambda: self.status.__setitem__(indices, overwritten))
        if rows is not None:
            last = self.last_changed[rows]
            undo.append(lambda: self.last_changed.__setitem__(rows, last))
            self.last_changed[rows] = block
        changed, tip = self.changed, self.tip_block
        touched.update(statuses.flagged)
        if changed:  # O(touched), not O(changed): a reorg may change many pools
            fresh = touched.difference(changed)
            undo.append(lambda: changed.difference_update(fresh))
            changed |= fresh
        else:  # drained after the last block, as usual
            undo.append(lambda: setattr(self, "changed", changed))
            self.changed = touched
        undo.append(lambda: setattr(self, "tip_block", tip))
        self.tip_block = block

    def _publish(
        self,
        counts: list[tuple[Counter, int]],
        stale_counts: list[tuple[Counter, int]],
        statuses: StatusChanges,
        detail: str,
    ) -> None:
        """The metrics and log lines of a block that is in (nothing here can fail it)."""
        publish(counts)
        publish(stale_counts)
        for reason, indices in statuses.newly_stale.items():
            self._log_stale(indices, reason, statuses.details.get(reason, "") + detail)
        if statuses:
            self.metrics.stale_pools.set(self.stale_count())
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

    def _after_block(self) -> None:
        self.metrics.tip_block.set(self.tip_block or 0)
        self.metrics.ring_blocks.set(len(self.ring))

    def _update_pool_gauges(self) -> None:
        self.metrics.pools_tracked.set(int(np.count_nonzero(self.registry.active)))
