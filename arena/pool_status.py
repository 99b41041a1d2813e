"""Pool statuses, and the status changes of one block staged before they are written.

A block decides statuses in steps (a failed mint/burn makes a pool stale, a Sync makes a
V2 pool live, a revert restores what a pre-image says); `StatusChanges` records each
step over the current statuses without writing them, counts the pools each reason newly
makes stale, and writes them all at once, keeping what it overwrote.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import final

import numpy as np
import numpy.typing as npt

StatusArray = npt.NDArray[np.uint8]
IndexArray = npt.NDArray[np.int64]


class PoolStatus(IntEnum):
    UNKNOWN = 0  # registered, state never hydrated: excluded
    LIVE = 1
    STALE = 2  # state not trustworthy (deep revert, divergent tick map): excluded


@final
class StatusChanges:
    __slots__ = ("_after", "_status", "flagged", "newly_stale")

    def __init__(self, status: StatusArray) -> None:
        self._status = status
        self._after: dict[int, int] = {}  # pool index -> status after the block
        self.newly_stale: dict[str, list[int]] = {}  # reason -> pools it made stale
        self.flagged: list[int] = []  # every pool marked, stale before or not

    def __bool__(self) -> bool:
        return bool(self._after)

    def status_of(self, index: int) -> int:
        after = self._after.get(index)
        return int(self._status[index]) if after is None else after

    def mark_stale(self, indices: Iterable[int], reason: str) -> None:
        stale = PoolStatus.STALE
        for i in indices:
            self.flagged.append(i)
            if self.status_of(i) != stale:
                self._after[i] = stale
                self.newly_stale.setdefault(reason, []).append(i)

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
