"""`state_at`: a pool's 52-byte record as of the end of any block the ring or spill covers.

The pre-image of a pool in block k is its state at the end of block k-1. So the state at
the end of block B is the pre-image in the first block after B that touched the pool, or
the current record if no later block touched it.
"""

from __future__ import annotations

from arena.engine import ArenaEngine
from arena.errors import StateUnavailableError
from arena.snapshot_ring import record_of


def oldest_answerable_block(engine: ArenaEngine) -> int | None:
    """The oldest block whose end state can be answered (one before the oldest held)."""
    oldest = engine.ring.oldest_block
    spill = engine.ring.spill
    if spill is not None:
        spilled = spill.blocks()
        if spilled:
            oldest = min(spilled)
    if oldest is None:
        return engine.tip_block
    return oldest - 1


def state_at(engine: ArenaEngine, index: int, block: int) -> bytes:
    """The record of pool `index` at the end of `block`."""
    tip = engine.tip_block
    oldest = oldest_answerable_block(engine)
    if tip is None or oldest is None or not oldest <= block <= tip:
        raise StateUnavailableError(block, oldest, tip)
    spill = engine.ring.spill
    if spill is not None:
        for spilled in sorted(b for b in spill.blocks() if b > block):
            pre = spill.get(spilled)
            record = record_of(pre, index) if pre is not None else None
            if record is not None:
                return record
    for pre in engine.ring.entries_after(block):
        record = record_of(pre, index)
        if record is not None:
            return record
    return engine.table.read(index)
