"""RocksSpill against a real RocksDB directory."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from rocksdict import Options, Rdict

from arena.errors import ArenaError, SpillError
from arena.snapshot_ring import BlockPreImages
from arena.spill import RocksSpill, decode_pre_images, encode_pre_images
from arena.state_table import RECORD_SIZE, SWAP_STATE


def make_pre(block: int, n: int, seed: int | None = None) -> BlockPreImages:
    rng = np.random.default_rng(block if seed is None else seed)
    indices = np.sort(rng.choice(1_000_000, size=n, replace=False)).astype(np.int64)
    raw = rng.integers(0, 256, size=n * RECORD_SIZE, dtype=np.uint8).tobytes()
    return BlockPreImages(block, indices, np.frombuffer(raw, dtype=SWAP_STATE).copy())


def same(a: BlockPreImages | None, b: BlockPreImages) -> bool:
    return (
        a is not None
        and a.block == b.block
        and a.indices.dtype == np.int64
        and a.records.dtype == SWAP_STATE
        and a.indices.tobytes() == b.indices.tobytes()
        and a.records.tobytes() == b.records.tobytes()
    )


def test_codec_round_trip_and_rejects_malformed() -> None:
    pre = make_pre(17_000_000, 200)
    blob = encode_pre_images(pre)
    assert len(blob) == 16 + 200 * (8 + RECORD_SIZE)
    back = decode_pre_images(blob)
    assert same(back, pre)
    back.records[0] = pre.records[1]  # decoded arrays are writable
    back.indices[0] = 3
    assert same(decode_pre_images(encode_pre_images(make_pre(5, 0))), make_pre(5, 0))
    with pytest.raises(ValueError, match="need"):
        decode_pre_images(blob[:-1])
    with pytest.raises(ValueError, match="version"):
        decode_pre_images(b"\x02" + blob[1:])
    with pytest.raises(ValueError, match="header"):
        decode_pre_images(blob[:5])
    with pytest.raises(ValueError, match="records"):
        encode_pre_images(BlockPreImages(1, pre.indices, pre.records[:3]))


def test_put_get_take_newest_order(tmp_path: Path) -> None:
    pres = {b: make_pre(b, b % 7) for b in range(100, 106)}
    with RocksSpill(tmp_path / "spill") as spill:
        assert (spill.newest_block, spill.oldest_block, len(spill)) == (None, None, 0)
        assert spill.take_newest(100) is None
        for pre in pres.values():
            spill.put(pre)
        assert spill.blocks() == list(range(100, 106))
        assert (spill.oldest_block, spill.newest_block, len(spill)) == (100, 105, 6)
        assert same(spill.get(102), pres[102])
        assert spill.get(99) is None and spill.get(106) is None
        assert spill.take_newest(104) is None  # not the newest: nothing removed
        assert len(spill) == 6
        for b in range(105, 99, -1):
            assert same(spill.take_newest(b), pres[b])
            assert spill.get(b) is None
        assert spill.take_newest(99) is None
        assert len(spill) == 0 and spill.newest_block is None
        assert spill.stats.blocks_written == 6
        assert spill.stats.blocks_read == 7
        assert spill.stats.bytes_written == sum(len(encode_pre_images(p)) for p in pres.values())


def test_pruning_keeps_depth_blocks(tmp_path: Path) -> None:
    with RocksSpill(tmp_path / "spill", depth=10) as spill:
        for b in range(1, 26):
            spill.put(make_pre(b, 3))
        assert spill.blocks() == list(range(16, 26))
        assert spill.stats.blocks_pruned == 15
        assert spill.get(15) is None and same(spill.get(16), make_pre(16, 3))
        spill.put(make_pre(30, 3))  # a gap: blocks older than 30 - 10 + 1 go
        assert spill.blocks() == [*range(21, 26), 30]
        spill.put(make_pre(1000, 1))
        assert spill.blocks() == [1000]
        assert spill.stats.blocks_pruned == 15 + 5 + 6
    with RocksSpill(tmp_path / "spill", depth=10) as spill:
        assert spill.blocks() == [1000]  # pruned keys are gone from the DB too


def test_put_at_or_below_newest_drops_that_history(tmp_path: Path) -> None:
    with RocksSpill(tmp_path / "spill") as spill:
        for b in range(1, 6):
            spill.put(make_pre(b, 2))
        replacement = make_pre(3, 4, seed=99)
        spill.put(replacement)
        assert spill.blocks() == [1, 2, 3]
        assert same(spill.get(3), replacement)
        assert spill.stats.blocks_dropped == 3
        assert spill.discard_from(2) == 2
        assert spill.blocks() == [1]
        assert spill.discard_from(5) == 0
    with RocksSpill(tmp_path / "spill") as spill:
        assert spill.blocks() == [1]


def test_reopen_persists_and_applies_new_depth(tmp_path: Path) -> None:
    path = tmp_path / "spill"
    pres = [make_pre(b, 200) for b in range(50, 80)]
    spill = RocksSpill(path)
    for pre in pres:
        spill.put(pre)
    spill.close()
    spill.close()  # idempotent
    with pytest.raises(SpillError, match="closed"):
        spill.put(make_pre(81, 1))
    with RocksSpill(path) as spill:
        assert spill.blocks() == list(range(50, 80))
        assert (spill.oldest_block, spill.newest_block) == (50, 79)
        for pre in pres:
            assert same(spill.get(pre.block), pre)
        assert same(spill.take_newest(79), pres[-1])
    with RocksSpill(path, depth=5) as spill:
        assert spill.blocks() == list(range(74, 79))
        assert spill.stats.blocks_pruned == 24
    with RocksSpill(path, depth=5) as spill:
        assert spill.blocks() == list(range(74, 79))
        spill.clear()
        assert spill.blocks() == [] and len(spill) == 0
    with RocksSpill(path) as spill:
        assert spill.blocks() == []


def test_locked_by_this_process(tmp_path: Path) -> None:
    with RocksSpill(tmp_path / "spill"), pytest.raises(SpillError) as info:
        RocksSpill(tmp_path / "spill")
    assert info.value.path == str(tmp_path / "spill")
    assert "lock" in info.value.reason.lower()
    assert isinstance(info.value, ArenaError)


def test_locked_by_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "spill")
    holder = (
        "import sys\n"
        "from arena.spill import RocksSpill\n"
        "spill = RocksSpill(sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
        "spill.close()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            with pytest.raises(SpillError) as info:
                RocksSpill(path)
            assert info.value.path == path
            assert "lock" in info.value.reason.lower()
        finally:
            proc.stdin.close()
            assert proc.wait(timeout=30) == 0
    with RocksSpill(path) as spill:  # released with the other process
        assert len(spill) == 0


def test_unusable_path(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"x")
    with pytest.raises(SpillError) as info:
        RocksSpill(not_a_dir)
    assert info.value.path == str(not_a_dir)
    with pytest.raises(SpillError):
        RocksSpill(not_a_dir / "below")
    with pytest.raises(ValueError, match="depth"):
        RocksSpill(tmp_path / "spill", depth=0)


def test_corrupt_value_is_a_spill_error(tmp_path: Path) -> None:
    path = tmp_path / "spill"
    with RocksSpill(path) as spill:
        spill.put(make_pre(7, 4))
        spill.put(make_pre(8, 4))
    options = Options(raw_mode=True)
    db = Rdict(str(path), options)
    db[b"s" + (7).to_bytes(8, "big")] = b"\x01garbage"
    db[b"s" + (8).to_bytes(8, "big")] = encode_pre_images(make_pre(9, 4))
    db.close()
    with RocksSpill(path) as spill:
        with pytest.raises(SpillError, match="block 7 is corrupt"):
            spill.get(7)
        with pytest.raises(SpillError, match="holds block 9"):
            spill.take_newest(8)


pre_sizes = st.integers(min_value=0, max_value=12)


class SpillModel(RuleBasedStateMachine):
    """Random put/take/get/reopen sequences against a dict of the blocks that should be held."""

    depth = 20

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "spill"
        self.spill = RocksSpill(self.path, depth=self.depth)
        self.model: dict[int, BlockPreImages] = {}
        self.next_block = 1000

    @initialize()
    def start_empty(self) -> None:
        assert len(self.spill) == 0

    @rule(gap=st.integers(min_value=1, max_value=8), n=pre_sizes, seed=st.integers(0, 2**32))
    def put_next(self, gap: int, n: int, seed: int) -> None:
        block = max([self.next_block - 1, *self.model]) + gap
        self.put(make_pre(block, n, seed))

    @precondition(lambda self: bool(self.model))
    @rule(back=st.integers(min_value=0, max_value=5), n=pre_sizes, seed=st.integers(0, 2**32))
    def put_rewrite(self, back: int, n: int, seed: int) -> None:
        self.put(make_pre(max(max(self.model) - back, 0), n, seed))

    def put(self, pre: BlockPreImages) -> None:
        self.spill.put(pre)
        self.model = {b: p for b, p in self.model.items() if b < pre.block}
        self.model[pre.block] = pre
        cutoff = pre.block - self.depth + 1
        self.model = {b: p for b, p in self.model.items() if b >= cutoff}
        self.next_block = pre.block + 1

    @rule(offset=st.integers(min_value=-2, max_value=2))
    def take_newest(self, offset: int) -> None:
        newest = max(self.model, default=self.next_block)
        got = self.spill.take_newest(newest + offset)
        if offset == 0 and self.model:
            assert same(got, self.model.pop(newest))
        else:
            assert got is None

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        block = data.draw(st.sampled_from([*self.model, self.next_block, 0]))
        got = self.spill.get(block)
        if block in self.model:
            assert same(got, self.model[block])
        else:
            assert got is None

    @rule()
    def reopen(self) -> None:
        self.spill.close()
        self.spill = RocksSpill(self.path, depth=self.depth)

    @invariant()
    def same_blocks(self) -> None:
        assert self.spill.blocks() == sorted(self.model)
        assert len(self.spill) == len(self.model)
        assert self.spill.newest_block == max(self.model, default=None)
        assert self.spill.oldest_block == min(self.model, default=None)

    def teardown(self) -> None:
        self.spill.close()
        self.dir.cleanup()


SpillModel.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_spill_matches_dict_model = SpillModel.TestCase
