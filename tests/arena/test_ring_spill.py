"""The snapshot ring evicting into a real RocksSpill, and reverts reading back through both."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.snapshot_ring import BlockPreImages, SnapshotRing
from arena.spill import RocksSpill
from arena.state_table import RECORD_SIZE, SWAP_STATE

SPILL_DEPTH = 40


def random_pre(block: int, n: int, rng: np.random.Generator) -> BlockPreImages:
    indices = np.sort(rng.choice(100_000, size=n, replace=False)).astype(np.int64)
    raw = rng.integers(0, 256, size=n * RECORD_SIZE, dtype=np.uint8).tobytes()
    return BlockPreImages(block, indices, np.frombuffer(raw, dtype=SWAP_STATE).copy())


def assert_exact(got: BlockPreImages | None, want: BlockPreImages) -> None:
    assert got is not None, f"block {want.block} missing"
    assert got.block == want.block
    assert got.indices.tobytes() == want.indices.tobytes(), f"block {want.block} indices"
    assert got.records.tobytes() == want.records.tobytes(), f"block {want.block} records"


def take_all(ring: SnapshotRing, chain: list[BlockPreImages]) -> int:
    """Take newest first while blocks come back; each must equal the chain's. Returns count."""
    taken = 0
    for want in reversed(chain):
        got = ring.take(want.block)
        if got is None:
            break
        assert_exact(got, want)
        taken += 1
    for want in chain[: len(chain) - taken][-3:]:  # once gone, deeper blocks stay gone
        assert ring.take(want.block) is None
    return taken


@pytest.fixture
def spill(tmp_path: Path) -> Iterator[RocksSpill]:
    with RocksSpill(tmp_path / "spill", depth=300) as s:
        yield s


def test_500_blocks_come_back_exact_until_beyond_depth(spill: RocksSpill) -> None:
    rng = np.random.default_rng(7)
    ring = SnapshotRing(depth=16, record_capacity=16 * 40, spill=spill)
    chain = [random_pre(b, int(rng.integers(0, 100)), rng) for b in range(1_000, 1_500)]
    for pre in chain:
        ring.push(pre.block, pre.indices, pre.records)
    in_ring = len(ring)
    assert 1 <= in_ring <= 16
    assert ring.spilled_blocks == 500 - in_ring
    assert ring.oldest_block is not None
    assert spill.newest_block == ring.oldest_block - 1
    assert len(spill) == 300
    assert take_all(ring, chain) == in_ring + 300
    assert len(ring) == 0 and len(spill) == 0


@pytest.fixture(scope="module")
def shared_spill() -> Iterator[RocksSpill]:
    with tempfile.TemporaryDirectory() as d, RocksSpill(Path(d) / "spill", SPILL_DEPTH) as s:
        yield s


@given(
    ring_depth=st.integers(min_value=1, max_value=8),
    capacity=st.integers(min_value=1, max_value=64),
    sizes=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=120),
    seed=st.integers(min_value=0, max_value=2**32),
)
@settings(max_examples=80, deadline=None)
def test_push_then_take_everything_property(
    shared_spill: RocksSpill, ring_depth: int, capacity: int, sizes: list[int], seed: int
) -> None:
    shared_spill.clear()
    rng = np.random.default_rng(seed)
    ring = SnapshotRing(depth=ring_depth, record_capacity=capacity, spill=shared_spill)
    chain = [random_pre(b, n, rng) for b, n in enumerate(sizes, start=50)]
    for pre in chain:
        ring.push(pre.block, pre.indices, pre.records)
    in_ring = len(ring)
    assert in_ring >= 1
    assert take_all(ring, chain) == in_ring + min(SPILL_DEPTH, len(chain) - in_ring)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("revert"), st.integers(min_value=1, max_value=12)),
    ),
    min_size=1,
    max_size=80,
)


@given(ops=ops, ring_depth=st.integers(1, 6), seed=st.integers(0, 2**32))
@settings(max_examples=80, deadline=None)
def test_reorgs_through_ring_and_spill_property(
    shared_spill: RocksSpill, ops: list[tuple[str, int]], ring_depth: int, seed: int
) -> None:
    """Pushes and reverts (newest first) in any order: whatever comes back is exact."""
    shared_spill.clear()
    pruned_before = shared_spill.stats.blocks_pruned
    rng = np.random.default_rng(seed)
    ring = SnapshotRing(depth=ring_depth, record_capacity=32, spill=shared_spill)
    chain: list[BlockPreImages] = []
    next_block = 10
    for op, arg in ops:
        if op == "push":
            chain.append(random_pre(next_block, arg, rng))
            ring.push(next_block, chain[-1].indices, chain[-1].records)
            next_block += 1
            continue
        for _ in range(min(arg, len(chain))):
            want = chain.pop()
            got = ring.take(want.block)
            if got is not None:
                assert_exact(got, want)
                continue
            # Only a block the spill pruned for depth may be missing, and nothing newer
            # may be left behind; the arena would resync from here.
            assert len(ring) == 0
            assert shared_spill.stats.blocks_pruned > pruned_before
            assert (shared_spill.newest_block or -1) < want.block
            chain.clear()
            ring.clear()
            shared_spill.clear()
            break
        next_block = chain[-1].block + 1 if chain else next_block
    take_all(ring, chain)
