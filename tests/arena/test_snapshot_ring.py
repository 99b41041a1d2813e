"""SnapshotRing alone, against a plain list of the blocks pushed and not yet popped.

The spill here is a list (`ListSpill`) that records every eviction, so the order and the
content of what leaves the ring are visible; the RocksDB spill has its own tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.snapshot_ring import RING_RECORD_BYTES, BlockPreImages, SnapshotRing, record_of
from arena.state_table import RECORD_SIZE, SWAP_STATE


class ListSpill:
    """A `PreImageSpill` over a Python list, oldest first."""

    def __init__(self) -> None:
        self.depth = 1 << 30
        self.entries: list[BlockPreImages] = []
        self.puts: list[int] = []

    def put_many(self, entries: Sequence[BlockPreImages]) -> None:
        for pre in entries:
            self.put(pre)

    def put(self, pre_images: BlockPreImages) -> None:
        self.puts.append(pre_images.block)
        self.entries.append(
            BlockPreImages(pre_images.block, pre_images.indices.copy(), pre_images.records.copy())
        )

    def take_newest(self, block: int) -> BlockPreImages | None:
        if self.entries and self.entries[-1].block == block:
            return self.entries.pop()
        return None

    def get(self, block: int) -> BlockPreImages | None:
        return next((e for e in self.entries if e.block == block), None)

    def blocks(self) -> list[int]:
        return [e.block for e in self.entries]

    def clear(self) -> None:
        self.entries.clear()


def make_pre(block: int, n: int) -> BlockPreImages:
    """Deterministic content per (block, n), distinct between blocks."""
    rng = np.random.default_rng(block * 1_000 + n)
    indices = np.sort(rng.choice(50_000, size=n, replace=False)).astype(np.int64)
    raw = rng.integers(0, 256, size=n * RECORD_SIZE, dtype=np.uint8).tobytes()
    return BlockPreImages(block, indices, np.frombuffer(raw, dtype=SWAP_STATE).copy())


def push(ring: SnapshotRing, pre: BlockPreImages) -> None:
    # The engine passes a fancy-index copy; pass views over a scratch copy and then
    # scribble on it, so an entry that kept a reference to its input would be caught.
    indices, records = pre.indices.copy(), pre.records.copy()
    ring.push(pre.block, indices, records)
    indices[:] = -1
    records.view(np.uint8)[:] = 0xEE


def capacity_of(ring: SnapshotRing) -> int:
    """Records the ring's buffer holds, from its documented allocation."""
    return (ring.nbytes - 3 * 8 * ring.depth) // RING_RECORD_BYTES


def same(got: BlockPreImages | None, want: BlockPreImages) -> bool:
    return (
        got is not None
        and got.block == want.block
        and got.indices.tobytes() == want.indices.tobytes()
        and got.records.tobytes() == want.records.tobytes()
    )


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        SnapshotRing(0)


def test_evicts_oldest_first_into_the_spill_and_takes_back_through_it() -> None:
    spill = ListSpill()
    ring = SnapshotRing(3, record_capacity=100, spill=spill)
    chain = [make_pre(b, b % 4) for b in range(10, 17)]
    for pre in chain:
        push(ring, pre)
    assert ring.blocks() == [14, 15, 16]
    assert spill.puts == [10, 11, 12, 13]
    assert all(same(got, want) for got, want in zip(spill.entries, chain, strict=False))
    assert ring.spilled_blocks == 4
    for want in reversed(chain):
        assert ring.take(want.block - 1) is None  # only the newest block can be taken
        assert same(ring.take(want.block), want)
    assert len(ring) == 0 and spill.entries == []
    assert ring.take(9) is None


def test_take_of_a_block_below_the_newest_changes_nothing() -> None:
    ring = SnapshotRing(4, record_capacity=64)
    for b in (1, 2, 3):
        push(ring, make_pre(b, 5))
    assert ring.take(2) is None
    assert ring.blocks() == [1, 2, 3]
    assert same(ring.take(3), make_pre(3, 5))
    assert ring.newest_block == 2 and ring.oldest_block == 1


def test_empty_blocks_are_entries_too() -> None:
    ring = SnapshotRing(4, record_capacity=8)
    push(ring, make_pre(1, 0))
    push(ring, make_pre(2, 8))
    push(ring, make_pre(3, 0))
    assert ring.blocks() == [1, 2, 3]
    assert ring.records_held == 8
    got = ring.take(3)
    assert got is not None and len(got.indices) == 0 and got.records.dtype == SWAP_STATE


def test_wrap_never_overwrites_newer_entries() -> None:
    """After a wrap the newest entries sit at the front of the buffer: a second wrap
    must evict them (and everything older) rather than write over them."""
    ring = SnapshotRing(8, record_capacity=10)
    chain = [make_pre(b, n) for b, n in [(1, 7), (2, 2), (3, 2), (4, 3), (5, 6)]]
    for pre in chain:
        push(ring, pre)
    held = ring.blocks()
    assert held[-1] == 5
    for want in reversed(chain[-len(held) :]):
        assert same(ring.take(want.block), want)


def test_empty_oldest_entry_does_not_shield_the_next_one() -> None:
    ring = SnapshotRing(8, record_capacity=6)
    chain = [make_pre(b, n) for b, n in [(1, 0), (2, 4), (3, 2), (4, 3)]]
    for pre in chain:
        push(ring, pre)
    held = ring.blocks()
    for want in reversed(chain[-len(held) :]):
        assert same(ring.take(want.block), want)


def test_a_block_bigger_than_the_capacity_grows_the_buffer_once() -> None:
    ring = SnapshotRing(4, record_capacity=8)
    small = make_pre(1, 6)
    push(ring, small)
    before = ring.nbytes
    big = make_pre(2, 30)
    push(ring, big)
    grown = ring.nbytes
    assert grown > before
    assert capacity_of(ring) >= 36
    assert ring.blocks() == [1, 2]  # growing kept the older entry
    assert same(ring.take(2), big)
    push(ring, make_pre(3, 4))
    assert ring.nbytes == grown
    assert same(ring.take(3), make_pre(3, 4))
    assert same(ring.take(1), small)


def test_entries_after_and_record_of() -> None:
    ring = SnapshotRing(8, record_capacity=64)
    chain = [make_pre(b, 4) for b in range(20, 25)]
    for pre in chain:
        push(ring, pre)
    after = ring.entries_after(21)
    assert [e.block for e in after] == [22, 23, 24]
    assert all(same(got, want) for got, want in zip(after, chain[2:], strict=True))
    pre = chain[0]
    for pos, index in enumerate(pre.indices.tolist()):
        assert record_of(pre, index) == pre.records[pos].tobytes()
    missing = next(i for i in range(50_000) if i not in set(pre.indices.tolist()))
    assert record_of(pre, missing) is None


def test_clear_forgets_everything_but_keeps_the_buffer() -> None:
    ring = SnapshotRing(4, record_capacity=16)
    nbytes = ring.nbytes
    for b in range(5):
        push(ring, make_pre(b, 3))
    ring.clear()
    assert len(ring) == 0 and ring.blocks() == [] and ring.newest_block is None
    assert ring.take(4) is None
    assert ring.nbytes == nbytes
    push(ring, make_pre(9, 3))
    assert same(ring.take(9), make_pre(9, 3))


# -- properties -------------------------------------------------------------------------

Op = tuple[str, int]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(min_value=0, max_value=24)),
        st.tuples(st.just("push"), st.integers(min_value=0, max_value=80)),
        st.tuples(st.just("pop"), st.integers(min_value=1, max_value=6)),
        st.tuples(st.just("take_other"), st.integers(min_value=1, max_value=3)),
    ),
    min_size=1,
    max_size=120,
)


class RingCheck:
    """Drives a ring and its list spill against `stack`: every block pushed and not
    popped, oldest first. The ring must hold a suffix of it, the spill the rest."""

    def __init__(self, depth: int, capacity: int) -> None:
        self.spill = ListSpill()
        self.ring = SnapshotRing(depth, record_capacity=capacity, spill=self.spill)
        self.stack: list[BlockPreImages] = []
        self.nbytes = self.ring.nbytes
        assert capacity_of(self.ring) == capacity
        self.next_block = 100

    def held(self) -> list[BlockPreImages]:
        return self.stack[len(self.stack) - len(self.ring) :]

    def push(self, n: int) -> None:
        ring = self.ring
        live_sizes = [len(e.indices) for e in self.held()]
        count_before, puts_before = len(ring), len(self.spill.puts)
        capacity_before = capacity_of(ring)
        pre = make_pre(self.next_block, n)
        self.next_block += 1
        push(ring, pre)
        self.stack.append(pre)
        evicted = len(self.spill.puts) - puts_before
        assert len(ring) == count_before + 1 - evicted
        assert ring.newest_block == pre.block  # the newest block is always kept
        capacity = capacity_of(ring)
        if n > capacity_before:
            # grows the buffer, keeping every entry (only a full ring drops its oldest)
            assert ring.nbytes > self.nbytes
            assert capacity >= n + sum(live_sizes)
            assert evicted == (1 if count_before == ring.depth else 0)
            self.nbytes = ring.nbytes
        assert ring.nbytes == self.nbytes  # nothing else changes the allocation
        fits = sum(live_sizes) + n + max([n, *live_sizes]) <= capacity
        if count_before < ring.depth and fits:
            assert evicted == 0, f"evicted {evicted} with room for {n} next to {live_sizes}"

    def pop(self, count: int) -> None:
        for _ in range(min(count, len(self.stack))):
            want = self.stack.pop()
            got = self.ring.take(want.block)
            assert same(got, want), f"block {want.block}"

    def take_other(self, offset: int) -> None:
        blocks_before, spilled_before = self.ring.blocks(), self.spill.blocks()
        newest = self.stack[-1].block if self.stack else self.next_block
        for block in (newest - offset, newest + offset):
            assert self.ring.take(block) is None
        assert self.ring.blocks() == blocks_before
        assert self.spill.blocks() == spilled_before

    @property
    def capacity(self) -> int:
        return capacity_of(self.ring)

    def check(self) -> None:
        ring = self.ring
        assert 0 <= len(ring) <= ring.depth
        assert ring.records_held == sum(len(e.indices) for e in self.held())
        assert ring.records_held <= self.capacity
        # eviction is oldest first: the spill holds the bottom of the stack, the ring the top
        assert self.spill.blocks() + ring.blocks() == [e.block for e in self.stack]
        for got, want in zip(self.spill.entries, self.stack, strict=False):
            assert same(got, want)
        held = self.held()
        assert all(same(g, w) for g, w in zip(ring.entries_after(-1), held, strict=True))
        if held:
            middle = held[len(held) // 2].block
            after = ring.entries_after(middle)
            assert [e.block for e in after] == [e.block for e in held if e.block > middle]


@given(
    ops=ops,
    depth=st.integers(min_value=1, max_value=10),
    capacity=st.integers(min_value=1, max_value=64),
)
@settings(max_examples=300, deadline=None)
def test_ring_and_spill_hold_exactly_the_stack(ops: list[Op], depth: int, capacity: int) -> None:
    check = RingCheck(depth, capacity)
    for op, arg in ops:
        match op:
            case "push":
                check.push(arg)
            case "pop":
                check.pop(arg)
            case _:
                check.take_other(arg)
        check.check()
    check.pop(len(check.stack))
    assert len(check.ring) == 0 and check.spill.entries == []


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=200),
    depth=st.integers(min_value=1, max_value=16),
    capacity=st.integers(min_value=1, max_value=128),
)
@settings(max_examples=150, deadline=None)
def test_without_a_spill_the_ring_keeps_the_newest_suffix(
    sizes: list[int], depth: int, capacity: int
) -> None:
    ring = SnapshotRing(depth, record_capacity=capacity)
    chain: list[BlockPreImages] = []
    for block, n in enumerate(sizes):
        previous = ring.blocks()
        pre = make_pre(block, n)
        push(ring, pre)
        chain.append(pre)
        held = ring.blocks()
        # only the oldest entries ever leave, and the new block is always there
        assert held[-1] == block
        assert held[:-1] == previous[len(previous) - (len(held) - 1) :]
        if n > capacity:  # grown: room for this block next to all it held
            assert held == [*previous[-(depth - 1) :], block] if depth > 1 else [block]
            capacity = capacity_of(ring)
        assert ring.records_held <= capacity == capacity_of(ring)
    held = ring.blocks()
    for want in reversed(chain[len(chain) - len(held) :]):
        assert same(ring.take(want.block), want)
    assert ring.take(held[0] - 1 if held else 0) is None
