"""A naive reference of what the arena must hold, written from the design, not the code.

Everything is plain Python: a dict of pool records, tick maps as dicts, and the history
as a list of *full* copies of the record dict (one per block, taken before it). It
imports nothing from `arena`.

The rules it encodes (DESIGN.md, EXEX_WIRE.md "Semantics"):
- V2Sync sets absolute reserves; V3/V4 swaps set absolute (sqrtPriceX96, liquidity,
  tick); a mint/burn adds `delta` to liquidityGross at both ticks, to liquidityNet at the
  lower tick and `-delta` at the upper one, drops a tick whose gross returns to zero, and
  moves the active liquidity iff `tick_lower <= tick < tick_upper` (UniswapV3Pool
  `_modifyPosition`). An impossible tick update (gross below 0 or above u128, or
  `tick_lower >= tick_upper`) leaves the map as it was and makes the pool stale; so
  does active liquidity leaving [0, u128] (it is clamped).
- History: the pre-images of the last `ring_depth` applied blocks, older ones in a spill
  that keeps blocks within `spill_depth` block numbers of the newest one spilled. Only
  the newest block held can be taken back. A revert restores the block's pools from its
  copy and applies `-delta` of its mints/burns in the order received; without a copy the
  pools its revert lists become stale and keep their records. The tip becomes block - 1.
- An epilogue final is authoritative: it is set, a stale pool becomes live, and a live
  pool whose record differed counts one divergence. It is the pool's state since its
  last update, so history after that block answers it too.
- A pool never hydrated is unknown (its record is zero). A V2 pool becomes live with
  its first applied V2Sync, and unknown again if the block of that Sync is reverted; a
  V2 final or a resync makes it live too.
- Sync: unseeded until a hydration or the first block taken; a loss makes it unsynced
  and names its cause (the first loss since synced is the one kept); only a hydration
  makes an unsynced arena synced again. A committed block more than one after the tip
  means blocks were lost: unsynced, cause "block_gap".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from exex_bridge import messages as m

U128_MAX = (1 << 128) - 1

Record = tuple[int, ...]  # (reserve0, reserve1) or (sqrt_price_x96, liquidity, tick)
TickMap = dict[int, tuple[int, int]]  # tick -> (liquidity_net, liquidity_gross)


class Sync(Enum):
    UNSEEDED = "unseeded"
    SYNCED = "synced"
    UNSYNCED = "unsynced"


class Kind(Enum):
    V2 = "v2"
    V3 = "v3"
    V4 = "v4"


SWAPS: dict[type, Kind] = {m.V3Swap: Kind.V3, m.V4Swap: Kind.V4}
LIQUIDITY: dict[type, Kind] = {m.V3Liquidity: Kind.V3, m.V4Liquidity: Kind.V4}


def record_bytes(kind: Kind, record: Record) -> bytes:
    """The 52-byte layout of DESIGN.md: little-endian sqrt (32), liquidity (16), tick (i32);
    a V2 pool's reserve0 (16) and reserve1 (16) in the first 32 bytes, the rest zero."""
    if kind is Kind.V2:
        r0, r1 = record
        return r0.to_bytes(16, "little") + r1.to_bytes(16, "little") + bytes(20)
    sqrt, liquidity, tick = record
    return (
        sqrt.to_bytes(32, "little")
        + liquidity.to_bytes(16, "little")
        + tick.to_bytes(4, "little", signed=True)
    )


def tick_update(ticks: TickMap, lower: int, upper: int, delta: int) -> bool:
    """Tick.update at both bounds; False (map untouched) if the result is impossible."""
    if delta == 0:
        return True
    if lower >= upper:
        return False
    new: TickMap = {}
    for tick, sign in ((lower, 1), (upper, -1)):
        net, gross = ticks.get(tick, (0, 0))
        if not 0 <= gross + delta <= U128_MAX:
            return False
        new[tick] = (net + sign * delta, gross + delta)
    for tick, (net, gross) in new.items():
        if gross:
            ticks[tick] = (net, gross)
        else:
            del ticks[tick]
    return True


@dataclass(frozen=True, slots=True)
class Snapshot:
    block: int
    before: dict[bytes, Record]  # every pool's record before `block`
    touched: frozenset[bytes]  # the pools `block` updated
    # the touched pools that were not live before `block`: "unknown" or "stale"
    status_before: dict[bytes, str]


class ReferenceArena:
    def __init__(
        self, kinds: Mapping[bytes, Kind], *, ring_depth: int, spill_depth: int | None
    ) -> None:
        self.kinds = dict(kinds)
        self.ring_depth = ring_depth
        self.spill_depth = spill_depth
        self.ticks: dict[bytes, TickMap] = {k: {} for k, kind in kinds.items() if kind != Kind.V2}
        self.stale: set[bytes] = set()
        self.unknown: set[bytes] = set(kinds)
        self.records: dict[bytes, Record] = {
            k: (0, 0) if kind is Kind.V2 else (0, 0, 0) for k, kind in kinds.items()
        }
        # The last block that changed (or hydrated) each pool: a revert deeper than the
        # history makes every live pool changed at or after it stale.
        self.last_changed: dict[bytes, int] = {}
        self.sync = Sync.UNSEEDED
        self.loss: str | None = None  # the cause of the loss, while unsynced
        self.tip: int | None = None
        self.ring: list[Snapshot] = []
        self.spill: list[Snapshot] = []
        self.changed: set[bytes] = set()
        self.discards: Counter[str] = Counter()
        self.divergences = 0
        self.applied = 0
        self.reverted = 0

    # -- state from elsewhere (hydration / resync) --------------------------------------
    def hydrate(
        self, records: Mapping[bytes, Record], ticks: Mapping[bytes, TickMap], tip: int
    ) -> None:
        self.records.update(records)
        self.ticks.update({k: dict(ticks.get(k, {})) for k in records if k in self.ticks})
        self.stale.difference_update(records)
        self.unknown.difference_update(records)
        self.ring.clear()
        self.spill.clear()
        self.sync, self.loss = Sync.SYNCED, None
        self.tip = tip
        for key in self.kinds:
            self.last_changed[key] = max(self.last_changed.get(key, -1), tip)
        self.changed.update(records)

    @property
    def unsynced(self) -> bool:
        return self.sync is Sync.UNSYNCED

    def mark_unsynced(self, cause: str) -> None:
        if self.sync is not Sync.UNSYNCED:
            self.sync, self.loss = Sync.UNSYNCED, cause

    def _seed_from_stream(self) -> None:
        if self.sync is Sync.UNSEEDED:
            self.sync = Sync.SYNCED

    def take_changed(self) -> set[bytes]:
        changed, self.changed = self.changed, set()
        return changed

    # -- blocks -------------------------------------------------------------------------
    def commit(self, number: int, updates: Sequence[m.PoolUpdateMessage]) -> None:
        """A committed block that the assembler accepted (number > tip)."""
        if self.tip is not None and number > self.tip + 1 and self.sync is Sync.SYNCED:
            # after a loss, the gap it leaves is its consequence: not counted again
            self.discards["block_gap"] += 1
            self.mark_unsynced("block_gap")
        touched = frozenset(self.pools_touched(updates))
        status_before = {k: "unknown" for k in touched & self.unknown}
        status_before.update({k: "stale" for k in touched & self.stale})
        self._push(Snapshot(number, dict(self.records), touched, status_before))
        for key in touched:
            self.last_changed[key] = number
        work = dict(self.records)
        for event in updates:
            key = self._modelled(event)
            if key is None:
                continue
            self.changed.add(key)
            self._apply(work, key, event.update)
            if isinstance(event.update, m.V2Sync):  # a V2 pool's whole state: live
                self.unknown.discard(key)
                self.stale.discard(key)
        self.records = work
        self.tip = number
        self._seed_from_stream()
        self.applied += 1

    def revert(self, number: int, updates: Sequence[m.PoolUpdateMessage]) -> None:
        """A reverted block (number == tip), updates in the order received. The producer
        leaves V2Sync out of reverted blocks: the copy restores every pool the block
        touched when it was applied, whatever the revert lists."""
        snapshot = self._take(number)
        if snapshot is not None:
            for pool in snapshot.touched:
                self.records[pool] = snapshot.before[pool]
            self.changed |= snapshot.touched
        for event in updates:
            key = self._modelled(event)
            if key is None:
                continue
            self.changed.add(key)
            if snapshot is None or key not in snapshot.touched:
                self._mark_stale(key)
            p = event.update
            if isinstance(p, m.V3Liquidity | m.V4Liquidity) and not tick_update(
                self.ticks[key], p.tick_lower, p.tick_upper, -p.liquidity_delta
            ):
                self._mark_stale(key)
        if snapshot is None:
            for key, changed_at in self.last_changed.items():
                if changed_at >= number and key not in self.unknown:
                    self._mark_stale(key)
                    self.changed.add(key)
        if snapshot is not None:  # a status is part of the pre-image; never revived here
            for key, status in snapshot.status_before.items():
                if status == "unknown":
                    self.stale.discard(key)
                    self.unknown.add(key)
                else:
                    self._mark_stale(key)
        self.tip = number - 1
        self._seed_from_stream()
        self.reverted += 1

    def apply_final(self, update: m.ReorgEpilogueUpdate) -> None:
        key = update.pool_id.value
        kind = self.kinds.get(key)
        match update:
            case m.Slot0Final(state=s) if kind in (Kind.V3, Kind.V4):
                final: Record = (s.sqrt_price_x96, s.liquidity, s.tick)
            case m.V2ReservesFinal(reserve0=r0, reserve1=r1) if kind is Kind.V2:
                final = (r0, r1)
            case _:
                return
        live = key not in self.stale and key not in self.unknown
        if live and self.records[key] != final:
            self.divergences += 1
        self.records[key] = final
        if kind is Kind.V2:
            self.unknown.discard(key)
        # The final is the pool's state since its last update: it is also the state at
        # the end of every block after that one.
        for snapshot in reversed(self.snapshots()):
            if key in snapshot.touched:
                break
            snapshot.before[key] = final
        self.stale.discard(key)
        self.changed.add(key)

    # -- history ------------------------------------------------------------------------
    def snapshots(self) -> list[Snapshot]:
        return self.spill + self.ring

    def oldest_answerable(self) -> int | None:
        held = self.snapshots()
        return held[0].block - 1 if held else self.tip

    def state_at(self, key: bytes, block: int) -> Record:
        oldest = self.oldest_answerable()
        if self.tip is None or oldest is None or not oldest <= block <= self.tip:
            raise LookupError(f"block {block} outside {oldest}..{self.tip}")
        for snapshot in self.snapshots():
            if snapshot.block > block:
                return snapshot.before[key]
        return self.records[key]

    def pools_touched(self, updates: Iterable[m.PoolUpdateMessage]) -> set[bytes]:
        return {k for k in (self._modelled(e) for e in updates) if k is not None}

    def status(self, key: bytes) -> str:
        return "stale" if key in self.stale else "unknown" if key in self.unknown else "live"

    # -- internals ----------------------------------------------------------------------
    def _mark_stale(self, key: bytes) -> None:
        self.stale.add(key)
        self.unknown.discard(key)

    def _modelled(self, event: m.PoolUpdateMessage) -> bytes | None:
        key = event.pool_id.value
        kind = self.kinds.get(key)
        p = type(event.update)
        if kind is None:
            return None
        if kind is Kind.V2 and p is m.V2Sync:
            return key
        if SWAPS.get(p) is kind or LIQUIDITY.get(p) is kind:
            return key
        return None

    def _apply(self, work: dict[bytes, Record], key: bytes, p: m.PoolUpdatePayload) -> None:
        match p:
            case m.V2Sync(reserve0=r0, reserve1=r1):
                work[key] = (r0, r1)
            case m.V3Swap() | m.V4Swap():
                work[key] = (p.sqrt_price_x96, p.liquidity, p.tick)
            case m.V3Liquidity() | m.V4Liquidity():
                lower, upper, delta = p.tick_lower, p.tick_upper, p.liquidity_delta
                if not tick_update(self.ticks[key], lower, upper, delta):
                    self._mark_stale(key)
                    return
                sqrt, liquidity, tick = work[key]
                if lower <= tick < upper:
                    liquidity += delta
                    if not 0 <= liquidity <= U128_MAX:
                        liquidity = max(0, min(liquidity, U128_MAX))
                        self._mark_stale(key)
                work[key] = (sqrt, liquidity, tick)

    def _push(self, snapshot: Snapshot) -> None:
        self.ring.append(snapshot)
        if len(self.ring) > self.ring_depth:
            evicted = self.ring.pop(0)
            if self.spill_depth is not None:
                floor = evicted.block - self.spill_depth + 1
                kept = [s for s in self.spill if floor <= s.block < evicted.block]
                self.spill = [*kept, evicted]

    def _take(self, number: int) -> Snapshot | None:
        if self.ring:
            return self.ring.pop() if self.ring[-1].block == number else None
        if self.spill and self.spill[-1].block == number:
            return self.spill.pop()
        return None
