"""CheckpointStore against a real RocksDB directory."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rocksdict import Options, Rdict

from arena.checkpoint import (
    Checkpoint,
    CheckpointStore,
    decode_tick_maps,
    encode_tick_maps,
    int_from_bytes,
    int_to_bytes,
)
from arena.errors import ArenaError, CheckpointError
from arena.snapshot_ring import BlockPreImages
from arena.state_table import RECORD_SIZE, SWAP_STATE

U128 = 2**128
TICK = st.integers(min_value=-887272, max_value=887272)
NET = st.integers(min_value=-U128, max_value=U128)
GROSS = st.integers(min_value=0, max_value=U128)


def pre_images(block: int, n: int, rng: np.random.Generator) -> BlockPreImages:
    indices = np.sort(rng.choice(10_000, size=n, replace=False)).astype(np.int64)
    raw = rng.integers(0, 256, size=n * RECORD_SIZE, dtype=np.uint8).tobytes()
    return BlockPreImages(block, indices, np.frombuffer(raw, dtype=SWAP_STATE).copy())


def make_checkpoint(
    block: int,
    pools: int = 5,
    tick_maps: dict[int, dict[int, tuple[int, int]]] | None = None,
    ring_blocks: int = 3,
    seed: int = 0,
) -> Checkpoint:
    rng = np.random.default_rng(seed + block)
    return Checkpoint(
        block=block,
        stream_seq=block * 10 + 1,
        source_seq=None if block % 3 == 0 else block * 12 + 5,
        source_frames=None if block % 2 == 0 else block % 7,
        pool_keys=[rng.bytes(20 if i % 2 else 32) for i in range(pools)],
        protocols=rng.integers(0, 3, size=pools, dtype=np.uint8).tobytes(),
        records=rng.bytes(pools * RECORD_SIZE),
        status=rng.integers(0, 4, size=pools, dtype=np.uint8).tobytes(),
        tick_maps=tick_maps
        if tick_maps is not None
        else {0: {-60: (U128 - 1, U128 - 1), 60: (-(U128 - 1), U128 - 1)}, 3: {0: (-5, 5)}},
        ring=[
            pre_images(b, int(rng.integers(0, 50)), rng)
            for b in range(block - ring_blocks + 1, block + 1)
        ],
        created_at=1_700_000_000.5 + block,
    )


def assert_same(a: Checkpoint | None, b: Checkpoint) -> None:
    assert a is not None
    assert (a.block, a.stream_seq, a.source_seq, a.source_frames, a.created_at) == (
        b.block,
        b.stream_seq,
        b.source_seq,
        b.source_frames,
        b.created_at,
    )
    assert a.pool_keys == b.pool_keys
    assert (a.protocols, a.records, a.status) == (b.protocols, b.records, b.status)
    assert a.tick_maps == b.tick_maps
    for ma in a.tick_maps.values():
        for net, gross in ma.values():
            assert type(net) is int and type(gross) is int
    assert [p.block for p in a.ring] == [p.block for p in b.ring]
    for pa, pb in zip(a.ring, b.ring, strict=True):
        assert pa.indices.dtype == np.int64 and pa.records.dtype == SWAP_STATE
        assert pa.indices.tobytes() == pb.indices.tobytes()
        assert pa.records.tobytes() == pb.records.tobytes()


def corrupt(path: Path, key: bytes, flip_at: int = -1) -> None:
    db = Rdict(str(path), Options(raw_mode=True))
    stored = db[key]
    assert isinstance(stored, bytes)
    value = bytearray(stored)
    value[flip_at] ^= 0x01
    db[key] = bytes(value)
    db.close()


def part_key(block: int, part: str) -> bytes:
    return b"k" + block.to_bytes(8, "big") + b"/" + part.encode()


def raw_blocks(path: Path) -> set[int]:
    db = Rdict(str(path), Options(raw_mode=True))
    keys = [k for k in db.keys() if isinstance(k, bytes)]  # noqa: SIM118 (Rdict, not dict)
    blocks = {int.from_bytes(k[1:9], "big") for k in keys if k.startswith(b"k")}
    db.close()
    return blocks


@pytest.mark.parametrize(
    "value", [0, 1, -1, 127, 128, -128, -129, 2**63, -(2**63) - 1, 2**64, U128 - 1, U128, -U128]
)
def test_int_bytes_round_trip(value: int) -> None:
    assert int_from_bytes(int_to_bytes(value)) == value


@given(
    st.dictionaries(
        st.integers(min_value=0, max_value=2**40),
        st.dictionaries(TICK, st.tuples(NET, GROSS), max_size=20),
        max_size=8,
    )
)
@settings(max_examples=200, deadline=None)
def test_tick_maps_round_trip(tick_maps: dict[int, dict[int, tuple[int, int]]]) -> None:
    assert decode_tick_maps(encode_tick_maps(tick_maps)) == tick_maps


def test_round_trip_with_128_bit_ints(tmp_path: Path) -> None:
    tick_maps = {
        0: {-887272: (U128, U128), 887272: (-U128, U128), 0: (-(2**127), 2**127 - 1)},
        7: {10: (-1, 1), 20: (2**64, 2**64 + 1), -20: (-(2**64) - 1, 0)},
        9: {},
    }
    cp = make_checkpoint(100, pools=40, tick_maps=tick_maps, ring_blocks=5)
    with CheckpointStore(tmp_path / "ckpt") as store:
        assert store.load_latest() is None and store.blocks() == []
        written = store.save(cp)
        assert written >= 40 * RECORD_SIZE and store.bytes_written == written
        assert_same(store.load_latest(), cp)
    with CheckpointStore(tmp_path / "ckpt") as store:  # durable across reopen
        assert store.blocks() == [100]
        assert_same(store.load_latest(), cp)
    empty = Checkpoint(
        block=0,
        stream_seq=None,
        pool_keys=[],
        protocols=b"",
        records=b"",
        status=b"",
        tick_maps={},
        ring=[],
    )
    with CheckpointStore(tmp_path / "ckpt2") as store:
        store.save(empty)
        loaded = store.load_latest()
        assert_same(loaded, empty)
        assert loaded is not None and loaded.stream_seq is None and loaded.created_at > 0


def test_keeps_the_last_k(tmp_path: Path) -> None:
    path = tmp_path / "ckpt"
    cps = {b: make_checkpoint(b) for b in (10, 20, 30)}
    with CheckpointStore(path) as store:
        for cp in cps.values():
            store.save(cp)
        assert store.blocks() == [30, 20]
        assert_same(store.load(20), cps[20])
        with pytest.raises(CheckpointError) as info:
            store.load(10)
        assert info.value.block == 10 and "no retained" in info.value.reason
        store.save(make_checkpoint(20, seed=5))  # re-saving a block moves it to the front
        assert store.blocks() == [20, 30]
        assert_same(store.load(20), make_checkpoint(20, seed=5))
    assert raw_blocks(path) == {20, 30}
    with CheckpointStore(path, keep=3) as store:
        store.save(cps[10])
        assert store.blocks() == [10, 20, 30]
    with pytest.raises(ValueError, match="at least one"):
        CheckpointStore(path, keep=0)


@pytest.mark.parametrize(
    ("key", "flip_at"),
    [
        (part_key(20, "records"), 7),
        (part_key(20, "ticks"), -1),
        (part_key(20, "ring"), -1),
        (part_key(20, "pool_keys"), 3),
        (part_key(20, "manifest"), -1),
        (part_key(20, "manifest"), 0),
    ],
)
def test_corrupt_checkpoint_falls_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, key: bytes, flip_at: int
) -> None:
    path = tmp_path / "ckpt"
    older, newer = make_checkpoint(10), make_checkpoint(20)
    with CheckpointStore(path) as store:
        store.save(older)
        store.save(newer)
    corrupt(path, key, flip_at)
    with CheckpointStore(path) as store:
        with pytest.raises(CheckpointError) as info:
            store.load(20)
        assert info.value.block == 20 and info.value.path == str(path)
        assert isinstance(info.value, ArenaError)
        with caplog.at_level(logging.WARNING, logger="arena.checkpoint"):
            assert_same(store.load_latest(), older)
        assert store.corrupt_loads == 1
        assert any("block 20" in r.getMessage() for r in caplog.records)


def test_all_corrupt_gives_none(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ckpt"
    with CheckpointStore(path) as store:
        store.save(make_checkpoint(10))
        store.save(make_checkpoint(20))
    corrupt(path, part_key(10, "status"))
    corrupt(path, part_key(20, "protocols"))
    with CheckpointStore(path) as store, caplog.at_level(logging.WARNING):
        assert store.load_latest() is None
        assert store.corrupt_loads == 2
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    corrupt(path, b"pointer", 0)
    with CheckpointStore(path) as store:
        with pytest.raises(CheckpointError, match="pointer"):
            store.blocks()
        assert store.load_latest() is None


def test_checkpoint_without_pointer_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "ckpt"
    first = make_checkpoint(10)
    with CheckpointStore(path) as store:
        store.save(first)
    db = Rdict(str(path), Options(raw_mode=True))
    pointer_before = db[b"pointer"]
    db.close()
    with CheckpointStore(path) as store:
        store.save(make_checkpoint(20))
    # Parts of block 20 complete on disk, pointer as before them: as if never committed.
    db = Rdict(str(path), Options(raw_mode=True))
    db[b"pointer"] = pointer_before
    db.close()
    assert raw_blocks(path) == {10, 20}
    with CheckpointStore(path) as store:
        assert store.blocks() == [10]
        assert_same(store.load_latest(), first)
        with pytest.raises(CheckpointError):
            store.load(20)
        store.save(make_checkpoint(30))
        assert store.blocks() == [30, 10]
    assert raw_blocks(path) == {10, 30}  # the orphan was deleted by the next save
    with CheckpointStore(tmp_path / "fresh") as store:
        store.save(make_checkpoint(5))
    db = Rdict(str(tmp_path / "fresh"), Options(raw_mode=True))
    del db[b"pointer"]
    db.close()
    with CheckpointStore(tmp_path / "fresh") as store:
        assert store.load_latest() is None


def test_rejects_inconsistent_checkpoints(tmp_path: Path) -> None:
    good = make_checkpoint(50)
    bad = [
        msgspec_replace(good, protocols=good.protocols[:-1]),
        msgspec_replace(good, records=good.records + b"\x00"),
        msgspec_replace(good, status=b""),
        msgspec_replace(good, ring=list(reversed(good.ring))),
        msgspec_replace(good, block=good.ring[-1].block - 1),
        msgspec_replace(good, block=-1),
    ]
    with CheckpointStore(tmp_path / "ckpt") as store:
        for cp in bad:
            with pytest.raises(CheckpointError):
                store.save(cp)
        assert store.blocks() == []


def msgspec_replace(cp: Checkpoint, **changes: object) -> Checkpoint:
    return msgspec.structs.replace(cp, **changes)


def test_locked_and_unusable_paths(tmp_path: Path) -> None:
    with CheckpointStore(tmp_path / "ckpt"), pytest.raises(CheckpointError) as info:
        CheckpointStore(tmp_path / "ckpt")
    assert info.value.path == str(tmp_path / "ckpt") and "lock" in info.value.reason.lower()
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(CheckpointError):
        CheckpointStore(tmp_path / "file")
    store = CheckpointStore(tmp_path / "ckpt")
    store.close()
    store.close()
    with pytest.raises(CheckpointError, match="closed"):
        store.load_latest()
    with pytest.raises(CheckpointError, match="closed"):
        store.save(make_checkpoint(1))


@pytest.fixture(scope="module")
def shared_store() -> Iterator[CheckpointStore]:
    with tempfile.TemporaryDirectory() as d, CheckpointStore(Path(d) / "ckpt") as store:
        yield store


@st.composite
def checkpoints(draw: st.DrawFn) -> Checkpoint:
    block = draw(st.integers(min_value=0, max_value=2**40))
    pools = draw(st.integers(min_value=0, max_value=30))
    tick_maps = draw(
        st.dictionaries(
            st.integers(min_value=0, max_value=29),
            st.dictionaries(TICK, st.tuples(NET, GROSS), max_size=10),
            max_size=5,
        )
    )
    ring_blocks = draw(st.integers(min_value=0, max_value=6))
    seed = draw(st.integers(min_value=0, max_value=2**16))
    return make_checkpoint(block, pools, tick_maps, min(ring_blocks, block + 1), seed)


@given(cp=checkpoints())
@settings(max_examples=60, deadline=None)
def test_round_trip_property(shared_store: CheckpointStore, cp: Checkpoint) -> None:
    shared_store.save(cp)
    assert shared_store.blocks()[0] == cp.block
    assert_same(shared_store.load_latest(), cp)
