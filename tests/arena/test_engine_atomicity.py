"""A block applies or reverts whole, or not at all.

Two engines over V2, V3 and V4 pools live through the same history (a 3-block ring
spilling into a real RocksDB spill). Then one step of applying or reverting a block is
made to raise in one of them: the ring push, the spill's RocksDB write, a tick-map
update, the table write, the status write, the status history, the metric label
lookups. The exception must come out, and everything the engine holds (records, tick
maps and their versions, statuses, `last_changed`, ring, spill, tip, `changed`, status
history, every metric sample) must be as before the call. Done again without the fault,
the block must leave both engines equal. Every test runs with blocks applied on the
reference path and on the columnar one (the engine given each update's frame).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from arena.block_events import UpdateCounters
from arena.engine import ArenaEngine, PoolStatus
from arena.errors import SpillError
from arena.pool_status import StaleReason, StatusChanges, StatusHistory
from arena.snapshot_ring import SnapshotRing
from arena.spill import RocksSpill
from arena.state_table import StateTable
from arena.tick_maps import TickMaps
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from tests.arena.canonical_chain import PROTOCOL, CanonicalChain, Pool, seed_state
from tests.arena.reference_model import Kind
from tests.arena.stream_builder import ChainBlock, address, block_events, v4_pool_id

RING_DEPTH = 3
SPILL_DEPTH = 6
START_BLOCK = 500
POOLS = [
    Pool(address(0x201), Kind.V2),
    Pool(address(0x202), Kind.V2),
    Pool(address(0x301), Kind.V3),
    Pool(address(0x302), Kind.V3),
    Pool(v4_pool_id(0x401), Kind.V4),
    Pool(v4_pool_id(0x402), Kind.V4),
]
V3_POOL = POOLS[2]


class InjectedError(Exception):
    """The fault a test makes one step raise."""


APPLY_FAULTS: dict[str, tuple[type, str]] = {
    "ring push": (SnapshotRing, "push"),
    "spill write": (RocksSpill, "_write"),
    "tick map update": (TickMaps, "apply"),
    "table write": (StateTable, "scatter_bytes"),
    "table write of columns": (StateTable, "scatter"),
    "status write": (StatusChanges, "write"),
    "status history": (StatusHistory, "push"),
    "update counters": (UpdateCounters, "resolve"),
}
REVERT_FAULTS: dict[str, tuple[type, str]] = {
    "ring take": (SnapshotRing, "take"),
    "spill take": (RocksSpill, "take_newest"),
    "tick map update": (TickMaps, "apply"),
    "table restore": (StateTable, "scatter"),
    "status write": (StatusChanges, "write"),
    "update counters": (UpdateCounters, "resolve"),
}

MULTI_CALL = {"tick map update"}  # steps called more than once per block


@contextmanager
def fault(owner: type, name: str, nth: int) -> Iterator[list[int]]:
    """Make the `nth` call of `owner.name` raise; yields [calls so far]."""
    original: Callable[..., object] = getattr(owner, name)
    calls = [0]

    def failing(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        if calls[0] == nth:
            raise InjectedError(f"{owner.__name__}.{name}, call {nth}")
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(owner, name, failing)
        yield calls


@contextmanager
def stale_label_fault(engine: ArenaEngine) -> Iterator[None]:
    """The stale-marking metric refuses its label (as a fixed vocabulary would)."""

    def refuse(**labels: str) -> object:
        raise InjectedError(f"label {labels}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.metrics.stale_marked, "labels", refuse)
        yield


class World:
    """One engine over a real spill, hydrated from a canonical chain."""

    def __init__(self, root: Path, name: str, seed: int, *, columnar: bool = False) -> None:
        self.columnar = columnar
        self.spill = RocksSpill(root / name, SPILL_DEPTH)
        self.engine = ArenaEngine(ring_depth=RING_DEPTH, spill=self.spill, capacity=4)
        added = self.engine.add_pools(p.whitelisted() for p in POOLS)
        self.index = {p.key: i for p, i in zip(POOLS, added, strict=True)}
        chain = CanonicalChain(POOLS, START_BLOCK, seed_state(POOLS, random.Random(seed)))
        for pool in POOLS:
            i, ps = self.index[pool.key], chain.state[pool.key]
            if pool.kind is Kind.V2:
                self.engine.set_reserves(i, ps.record[0], ps.record[1])
            else:
                self.engine.set_slot0(i, *ps.record, ticks=ps.ticks())
        self.engine.mark_synced(START_BLOCK, keep_history=False)

    def frames(self, events: list[m.PoolUpdateMessage]) -> list[bytes] | None:
        if not self.columnar:
            return None
        return [encode_message(m.PoolUpdate(stream_seq=1, event=e)) for e in events]

    def apply(self, block: ChainBlock, extra: list[m.PoolUpdateMessage]) -> None:
        events = [*block_events(block), *extra]
        self.engine.apply_block(begin(block, is_revert=False), events, self.frames(events))

    def revert(self, block: ChainBlock) -> None:
        events = [
            e
            for e in block_events(block, is_revert=True)
            if not isinstance(e.update, m.V2Sync)  # the producer sends none
        ]
        self.engine.revert_block(begin(block, is_revert=True), events)

    def snapshot(self, *, timings: bool = True) -> dict[str, object]:
        engine, spill = self.engine, self.spill
        n = len(engine.registry)
        spilled = [spill.get(b) for b in spill.blocks()]
        metrics = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in engine.metrics.registry.collect()
            for s in metric.samples
            # `_created` is a wall-clock time (twin engines differ); the series it belongs
            # to is compared through its other samples
            if not s.name.endswith("_created")
            and (
                timings or not (metric.name.endswith("_seconds") and not s.name.endswith("_count"))
            )
        }
        return {
            "table": engine.table.records.tobytes(),
            "ticks": engine.ticks.snapshot(),
            "tick versions": dict(engine.ticks.version),
            "status": engine.status[:n].tobytes(),
            "last_changed": engine.last_changed[:n].tobytes(),
            "ring": [
                (pre.block, pre.indices.tobytes(), pre.records.tobytes())
                for pre in engine.ring.entries_after(-1)
            ],
            "ring length": len(engine.ring),
            "spill": [
                (pre.block, pre.indices.tobytes(), pre.records.tobytes())
                for pre in spilled
                if pre is not None
            ],
            "tip": engine.tip_block,
            "changed": set(engine.changed),
            "status history": engine._status_before.blocks(),
            "metrics": metrics,
        }

    def close(self) -> None:
        self.spill.close()


def begin(block: ChainBlock, *, is_revert: bool) -> m.BeginBlock:
    return m.BeginBlock(
        stream_seq=0,
        block_number=block.number,
        block_timestamp=block.timestamp,
        base_fee_per_gas=block.base_fee_per_gas,
        is_revert=is_revert,
    )


def stray(
    block: ChainBlock, payload: m.PoolUpdatePayload, protocol: m.Protocol
) -> m.PoolUpdateMessage:
    return m.PoolUpdateMessage(
        pool_id=V3_POOL.pool_id,
        protocol=protocol,
        update_type=m.UpdateType.SWAP,
        block_number=block.number,
        block_timestamp=block.timestamp,
        tx_index=99,
        log_index=99,
        is_revert=False,
        update=payload,
    )


def extras(
    block: ChainBlock, *, divergent_burn: bool, wrong_kind: bool
) -> list[m.PoolUpdateMessage]:
    """Updates that make a pool stale inside the block: a burn its tick map cannot
    absorb, and a V4 swap sent for a V3 pool."""
    out = []
    if divergent_burn:
        burn = m.V3Liquidity(tick_lower=-30, tick_upper=30, liquidity_delta=-(1 << 120))
        out.append(stray(block, burn, PROTOCOL[Kind.V3]))
    if wrong_kind:
        swap = m.V4Swap(sqrt_price_x96=1 << 96, liquidity=1, tick=0)
        out.append(stray(block, swap, PROTOCOL[Kind.V4]))
    return out


@contextmanager
def twin_worlds(seed: int, *, columnar: bool = False) -> Iterator[tuple[World, World]]:
    with tempfile.TemporaryDirectory(prefix="arena-atomicity-") as tmp:
        faulty = World(Path(tmp), "faulty", seed, columnar=columnar)
        clean = World(Path(tmp), "clean", seed, columnar=columnar)
        try:
            yield faulty, clean
        finally:
            faulty.close()
            clean.close()


def live_through(
    worlds: tuple[World, ...],
    seed: int,
    history: int,
    *,
    with_stale: bool = False,
    stale_at_tip: bool = True,
) -> list[ChainBlock]:
    """Apply `history` blocks to each world; returns them and one more block. With
    `with_stale`, a V3 pool is stale throughout and a V2 pool is made stale before every
    block (its next Sync revives it), and after the last unless not `stale_at_tip`:
    statuses then move inside blocks and reverts."""
    chain = CanonicalChain(POOLS, START_BLOCK, seed_state(POOLS, random.Random(seed)))
    rng = random.Random(seed + 1)
    blocks = [chain.generate(rng, max_updates=10) for _ in range(history + 1)]
    for world in worlds:
        if with_stale:
            world.engine.mark_stale(world.index[POOLS[3].key], StaleReason.STALE_IN_LOADED_STATE)
        for block in blocks[:-1]:
            if with_stale:
                world.engine.mark_stale(
                    world.index[POOLS[0].key], StaleReason.STALE_IN_LOADED_STATE
                )
            world.apply(block, [])
        if with_stale and stale_at_tip:
            world.engine.mark_stale(world.index[POOLS[0].key], StaleReason.STALE_IN_LOADED_STATE)
    return blocks


@given(
    seed=st.integers(0, 2**32 - 1),
    history=st.integers(0, 2 * RING_DEPTH + SPILL_DEPTH),
    point=st.sampled_from([*APPLY_FAULTS, "stale metric label"]),
    nth=st.integers(1, 3),
    divergent_burn=st.booleans(),
    wrong_kind=st.booleans(),
    with_stale=st.booleans(),
    columnar=st.booleans(),
)
@settings(max_examples=120, deadline=None)
def test_apply_is_all_or_nothing(
    seed: int,
    history: int,
    point: str,
    nth: int,
    *,
    divergent_burn: bool,
    wrong_kind: bool,
    with_stale: bool,
    columnar: bool,
) -> None:
    nth = nth if point in MULTI_CALL else 1
    with twin_worlds(seed, columnar=columnar) as (faulty, clean):
        blocks = live_through((faulty, clean), seed, history, with_stale=with_stale)
        block, added = (
            blocks[-1],
            extras(blocks[-1], divergent_burn=divergent_burn, wrong_kind=wrong_kind),
        )
        before = faulty.snapshot()
        fired = True
        try:
            if point == "stale metric label":
                with stale_label_fault(faulty.engine):
                    faulty.apply(block, added)
            else:
                with fault(*APPLY_FAULTS[point], nth):
                    faulty.apply(block, added)
            fired = False
        except InjectedError:
            assert faulty.snapshot() == before
        event(f"apply fault at {point}: {'fired' if fired else 'not reached'}")
        if fired:
            faulty.apply(block, added)
        clean.apply(block, added)
        assert faulty.snapshot(timings=False) == clean.snapshot(timings=False)


@given(
    seed=st.integers(0, 2**32 - 1),
    history=st.integers(1, 2 * RING_DEPTH + SPILL_DEPTH),
    depth=st.integers(1, RING_DEPTH + 3),
    point=st.sampled_from([*REVERT_FAULTS, "stale metric label"]),
    nth=st.integers(1, 2),
    with_stale=st.booleans(),
    columnar=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_revert_is_all_or_nothing(
    seed: int,
    history: int,
    depth: int,
    point: str,
    nth: int,
    *,
    with_stale: bool,
    columnar: bool,
) -> None:
    nth = nth if point in MULTI_CALL else 1
    with twin_worlds(seed, columnar=columnar) as (faulty, clean):
        worlds = (faulty, clean)
        blocks = live_through(worlds, seed, history, with_stale=with_stale, stale_at_tip=False)
        blocks.pop()
        depth = min(depth, len(blocks))
        for block in reversed(blocks[len(blocks) - depth + 1 :]):
            faulty.revert(block)
            clean.revert(block)
        block = blocks[len(blocks) - depth]
        where = "ring" if len(faulty.engine.ring) else "spill"
        before = faulty.snapshot()
        fired = True
        try:
            if point == "stale metric label":
                with stale_label_fault(faulty.engine):
                    faulty.revert(block)
            else:
                with fault(*REVERT_FAULTS[point], nth):
                    faulty.revert(block)
            fired = False
        except InjectedError:
            assert faulty.snapshot() == before
        event(f"revert from the {where}, fault at {point}: {'fired' if fired else 'not reached'}")
        if fired:
            faulty.revert(block)
        clean.revert(block)
        assert faulty.snapshot(timings=False) == clean.snapshot(timings=False)


def test_a_closed_spill_fails_the_block_and_leaves_the_engine_as_it_was(tmp_path: Path) -> None:
    world = World(tmp_path, "spill", seed=7)
    blocks = live_through((world,), seed=7, history=RING_DEPTH)  # the next push evicts
    world.spill.close()
    before = world.snapshot()
    with pytest.raises(SpillError):
        world.apply(blocks[-1], [])
    assert world.snapshot() == before


def test_a_stale_marking_in_a_failed_block_is_taken_back(tmp_path: Path) -> None:
    world = World(tmp_path, "spill", seed=11)
    blocks = live_through((world,), seed=11, history=RING_DEPTH)
    v3 = world.index[V3_POOL.key]
    assert world.engine.status[v3] == PoolStatus.LIVE
    before = world.snapshot()
    with fault(RocksSpill, "_write", 1), pytest.raises(InjectedError):
        world.apply(blocks[-1], extras(blocks[-1], divergent_burn=True, wrong_kind=True))
    assert world.snapshot() == before
    assert world.engine.status[v3] == PoolStatus.LIVE
    world.apply(blocks[-1], extras(blocks[-1], divergent_burn=True, wrong_kind=True))
    assert world.engine.status[v3] == PoolStatus.STALE


def test_a_failed_revert_through_the_spill_leaves_the_block_spilled(tmp_path: Path) -> None:
    world = World(tmp_path, "spill", seed=3)
    blocks = live_through((world,), seed=3, history=RING_DEPTH + 2)[:-1]
    for block in reversed(blocks[-RING_DEPTH:]):
        world.revert(block)
    assert len(world.engine.ring) == 0
    block = blocks[-RING_DEPTH - 1]
    assert world.spill.newest_block == block.number
    before = world.snapshot()
    with fault(RocksSpill, "take_newest", 1), pytest.raises(InjectedError):
        world.revert(block)
    assert world.snapshot() == before
    world.revert(block)
    assert world.engine.tip_block == block.number - 1
    assert world.spill.newest_block == block.number - 1
