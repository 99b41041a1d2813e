"""What a block writes, worked out before anything is written.

`stage_records` folds a block's modelled updates into the new record of every pool they
change (swaps and syncs set it, in-range mints and burns move its active liquidity),
passing mints and burns to a `TickJournal` and stale marks to a `StatusChanges`.
`invert_liquidity` does the mint/burn half of a revert. The engine then writes the
result, each write pushing the step that undoes it on an `UndoSteps` list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from arena.block_events import BlockEvents
from arena.errors import TickMapError
from arena.pool_status import StaleLabel, StaleReason, StatusChanges
from arena.state_table import StateTable
from arena.tick_journal import TickJournal
from arena.tick_maps import U128_MAX
from arena.update_checks import liquidity_violation, swap_violation, sync_violation
from exex_bridge.messages import V2Sync, V3Liquidity, V3Swap, V4Liquidity, V4Swap

_LIQUIDITY: Final[frozenset[type]] = frozenset({V3Liquidity, V4Liquidity})
# pool index -> (sqrt, liquidity, tick) or (reserve0, reserve1): the block's new records
Work = dict[int, tuple[int, ...]]
# run newest first to put back what a block wrote before it failed
UndoSteps = list[Callable[[], object]]


# pools an update was refused for (a value no pool contract can produce), with the check
Refused = list[tuple[int, StaleLabel, str]]


def stage_records(
    found: BlockEvents, table: StateTable, journal: TickJournal, statuses: StatusChanges
) -> tuple[Work, list[int], Refused]:
    """The block's new records, the V2 pools it synced (in order, maybe repeated), and
    the updates refused by the range checks (never applied; their pools become stale
    after everything else the block decides, so a later Sync cannot revive them)."""
    work: Work = {}
    synced: list[int] = []
    refused: Refused = []
    add_synced = synced.append
    # Exact-class tests narrow the payload's type as a `match` does, at half the cost;
    # the decoder makes exactly these classes. Most frequent first.
    for index, p in zip(found.indices, found.payloads, strict=True):
        if p.__class__ is V3Swap or p.__class__ is V4Swap:
            bad = swap_violation(p.sqrt_price_x96, p.liquidity, p.tick)
            if bad is None:
                work[index] = (p.sqrt_price_x96, p.liquidity, p.tick)
            else:
                refused.append((index, bad, f"{p!r}"))
        elif p.__class__ is V2Sync:
            bad = sync_violation(p.reserve0, p.reserve1)
            if bad is None:
                work[index] = (p.reserve0, p.reserve1)
                add_synced(index)
            else:
                refused.append((index, bad, f"{p!r}"))
        elif p.__class__ is V3Liquidity or p.__class__ is V4Liquidity:
            bad = liquidity_violation(p.tick_lower, p.tick_upper, p.liquidity_delta)
            if bad is None:
                _apply_liquidity(work, index, p, table=table, journal=journal, statuses=statuses)
            else:
                refused.append((index, bad, f"{p!r}"))
    return work, synced, refused


def _apply_liquidity(
    work: Work,
    index: int,
    p: V3Liquidity | V4Liquidity,
    *,
    table: StateTable,
    journal: TickJournal,
    statuses: StatusChanges,
) -> None:
    try:
        journal.apply(index, p.tick_lower, p.tick_upper, p.liquidity_delta)
    except TickMapError as exc:
        statuses.mark_stale((index,), StaleReason.TICK_MAP_INCONSISTENT, f": {exc}")
        return
    sqrt, liquidity, tick = work.get(index) or table.slot0(index)
    if p.tick_lower <= tick < p.tick_upper:
        liquidity += p.liquidity_delta
        if not 0 <= liquidity <= U128_MAX:
            liquidity = max(0, min(liquidity, U128_MAX))
            statuses.mark_stale((index,), StaleReason.ACTIVE_LIQUIDITY_OUT_OF_RANGE)
        work[index] = (sqrt, liquidity, tick)


def invert_liquidity(found: BlockEvents, journal: TickJournal, statuses: StatusChanges) -> None:
    """Apply the negated delta of every mint and burn, in the order received."""
    liquidity = _LIQUIDITY
    if not any(cls in liquidity for _, cls in found.seen):
        return
    for index, p in zip(found.indices, found.payloads, strict=True):
        if p.__class__ not in liquidity:  # one set probe for the many that are not
            continue
        if p.__class__ is V3Liquidity or p.__class__ is V4Liquidity:
            if liquidity_violation(p.tick_lower, p.tick_upper, p.liquidity_delta) is not None:
                continue  # refused when the block was applied: there is nothing to invert
            try:
                journal.apply(index, p.tick_lower, p.tick_upper, -p.liquidity_delta)
            except TickMapError as exc:
                statuses.mark_stale((index,), StaleReason.TICK_MAP_INCONSISTENT, f": {exc}")
