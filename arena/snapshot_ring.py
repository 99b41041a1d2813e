"""The preallocated ring of the last N blocks' pre-images.

Each entry is one committed block: the sorted indices of the pools it touched and their
52-byte records as they were *before* the block. Records live in one circular buffer;
entries are pushed in block order and popped newest first by reverts. When the ring is
full (in entries or in record space) its oldest entries go to the spill, if one is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple, Protocol, final

import numpy as np

from arena.state_table import RECORD_SIZE, SWAP_STATE, IndexArray, StateArray

DEFAULT_DEPTH: Final = 128
DEFAULT_RECORDS_PER_BLOCK: Final = 512


class BlockPreImages(NamedTuple):
    block: int
    indices: IndexArray  # sorted, unique pool indices
    records: StateArray  # records[i] is the pool indices[i] before `block`


class PreImageSpill(Protocol):
    """Where blocks that leave the ring go (RocksDB in production; see arena.spill)."""

    depth: int  # block numbers kept below the newest one spilled

    def put_many(self, entries: Sequence[BlockPreImages]) -> None:
        """Store blocks (ascending) in one write: all of them, or on error none."""
        ...

    def take_newest(self, block: int) -> BlockPreImages | None: ...

    def get(self, block: int) -> BlockPreImages | None: ...

    def blocks(self) -> list[int]: ...

    def clear(self) -> None: ...


def record_of(pre: BlockPreImages, index: int) -> bytes | None:
    """The pre-image of pool `index` in this block, or None if the block did not touch it."""
    pos = int(np.searchsorted(pre.indices, index))
    if pos < len(pre.indices) and int(pre.indices[pos]) == index:
        return bytes(pre.records[pos].tobytes())
    return None


@final
class SnapshotRing:
    """Fixed-depth stack of recent blocks' pre-images over a preallocated record buffer."""

    def __init__(
        self,
        depth: int = DEFAULT_DEPTH,
        record_capacity: int | None = None,
        spill: PreImageSpill | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError(f"ring depth must be at least 1, got {depth}")
        self.depth = depth
        capacity = record_capacity or depth * DEFAULT_RECORDS_PER_BLOCK
        self._records: StateArray = np.zeros(capacity, dtype=SWAP_STATE)
        self._indices: IndexArray = np.zeros(capacity, dtype=np.int64)
        # entry slots, oldest at _head, newest at _head + _count - 1 (mod depth)
        self._block = np.zeros(depth, dtype=np.int64)
        self._start = np.zeros(depth, dtype=np.int64)
        self._size = np.zeros(depth, dtype=np.int64)
        self._slot_order = np.arange(2 * depth) % depth  # slots from _head, as one slice
        self._head = 0
        self._count = 0
        self._write = 0  # next free position in the record buffer
        self.spill = spill
        self.spilled_blocks = 0

    # -- size -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return int(self._records.nbytes + self._indices.nbytes + 3 * self._block.nbytes)

    @property
    def records_held(self) -> int:
        return int(sum(self._size[(self._head + i) % self.depth] for i in range(self._count)))

    def blocks(self) -> list[int]:
        """Blocks held, oldest first."""
        return [int(self._block[(self._head + i) % self.depth]) for i in range(self._count)]

    @property
    def newest_block(self) -> int | None:
        if not self._count:
            return None
        return int(self._block[(self._head + self._count - 1) % self.depth])

    @property
    def oldest_block(self) -> int | None:
        return int(self._block[self._head]) if self._count else None

    # -- push / pop -------------------------------------------------------------------
    def push(self, block: int, indices: IndexArray, records: StateArray) -> None:
        """Record the pre-images of `block`, evicting the oldest entries as needed.

        The evicted entries go to the spill in one write before the ring changes: if the
        spill raises, the ring holds what it held (its buffer may have grown).
        """
        n = len(indices)
        if n > len(self._records):
            self._grow(n)
        evicted, start = self._plan_push(n)
        if evicted and self.spill is not None:
            self.spill.put_many([self._entry(s, copy=True) for s in self._oldest(evicted)])
            self.spilled_blocks += evicted
        self._head = (self._head + evicted) % self.depth
        self._count -= evicted
        slot = (self._head + self._count) % self.depth
        self._indices[start : start + n] = indices
        self._records[start : start + n] = records
        self._block[slot], self._start[slot], self._size[slot] = block, start, n
        self._count += 1
        self._write = start + n

    def pop_newest(self) -> BlockPreImages | None:
        """Remove and return the newest entry (the ring's tip), or None when empty."""
        if not self._count:
            return None
        slot = (self._head + self._count - 1) % self.depth
        entry = self._entry(slot, copy=True)
        self._count -= 1
        self._write = int(self._start[slot])
        return entry

    def peek(self, block: int) -> BlockPreImages | None:
        """What `take(block)` would return, left in place (a ring entry as a view)."""
        if self._count:
            if self.newest_block != block:
                return None
            return self._entry((self._head + self._count - 1) % self.depth, copy=False)
        if self.spill is not None:
            spilled = self.spill.blocks()
            if spilled and spilled[-1] == block:
                return self.spill.get(block)
        return None

    def take(self, block: int) -> BlockPreImages | None:
        """The pre-images of `block` if it is the newest block held here or in the spill."""
        if self._count:
            if self.newest_block != block:
                return None
            return self.pop_newest()
        if self.spill is not None:
            return self.spill.take_newest(block)
        return None

    def entries_after(self, block: int) -> list[BlockPreImages]:
        """Entries of blocks > `block`, oldest first (views into the ring; do not keep)."""
        out = []
        for i in range(self._count):
            slot = (self._head + i) % self.depth
            if int(self._block[slot]) > block:
                out.append(self._entry(slot, copy=False))
        return out

    def clear(self) -> None:
        self._head = self._count = self._write = 0

    # -- internals --------------------------------------------------------------------
    def _entry(self, slot: int, *, copy: bool) -> BlockPreImages:
        start, n = int(self._start[slot]), int(self._size[slot])
        idx, rec = self._indices[start : start + n], self._records[start : start + n]
        if copy:
            idx, rec = idx.copy(), rec.copy()
        return BlockPreImages(int(self._block[slot]), idx, rec)

    def _plan_push(self, n: int) -> tuple[int, int]:
        """How many oldest entries a push of `n` records evicts, and where it goes."""
        evicted = 1 if self._count == self.depth else 0
        write = 0 if evicted and self._count == evicted else self._write
        start = write if write + n <= len(self._records) else 0
        while self._count > evicted and self._overlaps_live(start, n, evicted):
            evicted += 1
        return evicted, start

    def _oldest(self, count: int) -> list[int]:
        return [(self._head + i) % self.depth for i in range(count)]

    def _overlaps_live(self, start: int, n: int, skip: int) -> bool:
        """Whether [start, start + n) meets a live entry other than the `skip` oldest."""
        # Every live entry, not only the oldest: after a wrap the newest entries sit at the
        # front of the buffer, and an empty oldest entry says nothing about the next one.
        if n == 0:
            return False
        slots = self._slot_order[self._head + skip : self._head + self._count]
        starts, sizes = self._start[slots], self._size[slots]
        return bool(np.any((sizes > 0) & (starts < start + n) & (start < starts + sizes)))

    def _grow(self, needed: int) -> None:
        entries = [
            self._entry((self._head + i) % self.depth, copy=True) for i in range(self._count)
        ]
        # Room for the new block next to everything held, or growing evicts it all.
        capacity = max(needed + self.records_held, 2 * len(self._records))
        self._records = np.zeros(capacity, dtype=SWAP_STATE)
        self._indices = np.zeros(capacity, dtype=np.int64)
        self.clear()
        for e in entries:
            self.push(e.block, e.indices, e.records)


RING_RECORD_BYTES: Final = RECORD_SIZE + 8
