"""Pool statuses, and the status changes of one block staged before they are written.

A block decides statuses in steps (a failed mint/burn makes a pool stale, a Sync makes a
V2 pool live, a revert restores what a pre-image says); `StatusChanges` records each
step over the current statuses without writing them, counts the pools each reason newly
makes stale, and writes them all at once, keeping what it overwrote.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from enum import IntEnum, StrEnum
from typing import final

import numpy as np
import numpy.typing as npt

from arena.update_checks import Violation

StatusArray = npt.NDArray[np.uint8]
IndexArray = npt.NDArray[np.int64]


class PoolStatus(IntEnum):
    UNKNOWN = 0  # registered, state never hydrated: excluded
    LIVE = 1
    STALE = 2  # state not trustworthy (deep revert, divergent tick map): excluded


class StaleReason(StrEnum):
    """Why pools were marked stale: the `reason` label of `arena_pools_marked_stale_total`
    (a fixed vocabulary; the specifics of each case go to the log line only)."""

    REVERT_TOO_DEEP = "revert_too_deep"
    REVERT_WITHOUT_PRE_IMAGE = "revert_without_pre_image"
    STALE_BEFORE_REVERTED_BLOCK = "stale_before_reverted_block"
    TICK_MAP_INCONSISTENT = "tick_map_inconsistent"
    ACTIVE_LIQUIDITY_OUT_OF_RANGE = "active_liquidity_out_of_range"
    UPDATE_KIND_MISMATCH = "update_kind_mismatch"
    STALE_IN_LOADED_STATE = "stale_in_loaded_state"
    NOT_HYDRATABLE = "not_hydratable"
    COIN_COUNT_MISMATCH = "coin_count_mismatch"  # a multi-coin update for another coin count
    COIN_STATE_NOT_IN_CHECKPOINT = "coin_state_not_in_checkpoint"
    BALANCER_UPDATE_REFUSED = "balancer_update_refused"  # unknown token, balance below 0
    # a first-generation weighted pool's join/exit: protocol fees left the balances unseen
    BALANCER_JOIN_EXIT_PROTOCOL_FEES = "balancer_join_exit_protocol_fees"


# A stale mark's metric label: one of the engine's reasons, or the range check an update
# failed (`arena.update_checks.Violation`).
StaleLabel = StaleReason | Violation


@final
class StatusChanges:
    __slots__ = ("_after", "_status", "details", "flagged", "newly_stale")

    def __init__(self, status: StatusArray) -> None:
        self._status = status
        self._after: dict[int, int] = {}  # pool index -> status after the block
        self.newly_stale: dict[StaleLabel, list[int]] = {}  # reason -> pools it made stale
        self.details: dict[StaleLabel, str] = {}  # reason -> its first case, for the log
        self.flagged: list[int] = []  # every pool marked, stale before or not

    def __bool__(self) -> bool:
        return bool(self._after)

    def status_of(self, index: int) -> int:
        after = self._after.get(index)
        return int(self._status[index]) if after is None else after

    def mark_stale(self, indices: Iterable[int], reason: StaleLabel, detail: str = "") -> None:
        stale = PoolStatus.STALE
        for i in indices:
            self.flagged.append(i)
            if self.status_of(i) != stale:
                self._after[i] = stale
                self.newly_stale.setdefault(reason, []).append(i)
                if detail:
                    self.details.setdefault(reason, detail)

    def set(self, indices: IndexArray, status: PoolStatus) -> None:
        for i in indices.tolist():
            self._after[i] = int(status)

    def write(self) -> tuple[IndexArray, StatusArray]:
        """Write every change; returns the indices and the statuses they had."""
        indices = np.fromiter(self._after, dtype=np.int64, count=len(self._after))
        before = self._status[indices]
        self._status[indices] = np.fromiter(
            self._after.values(), dtype=np.uint8, count=len(self._after)
        )
        return indices, before


# the pools a block touched that were not LIVE before it, and their statuses then
StatusHistoryEntry = tuple[IndexArray, StatusArray]


@final
class StatusHistory:
    """The pre-block statuses of recent blocks, oldest first, for reverts to restore.

    Applied blocks ascend and a revert removes the tip, so insertion order is block
    order: dropping the oldest entry is `popitem(last=False)`, O(1), never a search.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: OrderedDict[int, StatusHistoryEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def blocks(self) -> list[int]:
        return list(self._entries)

    def get(self, block: int) -> StatusHistoryEntry | None:
        return self._entries.get(block)

    def push(self, block: int, entry: StatusHistoryEntry, undo: list[Callable[[], object]]) -> None:
        entries = self._entries
        entries[block] = entry
        undo.append(lambda: entries.pop(block, None))

    def pop(self, block: int, undo: list[Callable[[], object]]) -> None:
        entries = self._entries
        entry = entries.pop(block, None)
        if entry is not None:  # the tip's entry: it goes back on top
            undo.append(lambda: entries.__setitem__(block, entry))

    def keep_newest(self, count: int) -> None:
        entries = self._entries
        while len(entries) > count:
            entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
