"""RocksSpill cost per block: put (ring eviction), take_newest (deep revert), get.

.venv/bin/python benchmarks/bench_spill.py [--pre-images 200] [--blocks 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from arena.snapshot_ring import BlockPreImages
from arena.spill import RocksSpill
from arena.state_table import RECORD_SIZE, SWAP_STATE

T = TypeVar("T")


def make_blocks(count: int, per_block: int, first: int) -> list[BlockPreImages]:
    rng = np.random.default_rng(1)
    out = []
    for block in range(first, first + count):
        indices = np.sort(rng.choice(50_000, size=per_block, replace=False)).astype(np.int64)
        raw = rng.integers(0, 256, size=per_block * RECORD_SIZE, dtype=np.uint8).tobytes()
        out.append(BlockPreImages(block, indices, np.frombuffer(raw, dtype=SWAP_STATE)))
    return out


def timed(fn: Callable[[T], object], args: Iterable[T]) -> list[float]:
    """Microseconds per call of `fn` on each argument."""
    out = []
    for arg in args:
        t0 = time.perf_counter_ns()
        fn(arg)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def row(name: str, micros: list[float]) -> tuple[str, str, str, str, str]:
    a = np.asarray(micros)
    return (
        name,
        str(len(a)),
        f"{np.percentile(a, 50):.1f}",
        f"{np.percentile(a, 99):.1f}",
        f"{a.mean():.1f}",
    )


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def run(per_block: int, blocks: int, depth: int, path: Path) -> None:
    data = make_blocks(blocks, per_block, first=20_000_000)
    rows = []
    with RocksSpill(path, depth=depth) as spill:
        puts = timed(spill.put, data)
        rows.append(row(f"put ({spill.stats.blocks_pruned} pruned)", puts))
        held = spill.blocks()
        rng = np.random.default_rng(2)
        gets = timed(spill.get, [int(b) for b in rng.choice(held, 1000)])
        rows.append(row("get (random held block)", gets))
        takes = timed(spill.take_newest, reversed(held))
        rows.append(row("take_newest", takes))
        bytes_per_block = spill.stats.bytes_written // max(spill.stats.blocks_written, 1)
    print(f"RocksSpill: {per_block} pre-images/block, {bytes_per_block} B/block, depth {depth}")
    print_table(("operation", "n", "p50 µs", "p99 µs", "mean µs"), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pre-images", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=3000)
    parser.add_argument("--depth", type=int, default=1024)
    parser.add_argument("--path", type=Path, help="RocksDB directory (default: a temp dir)")
    args = parser.parse_args()
    if args.path is not None:
        run(args.pre_images, args.blocks, args.depth, args.path)
        return
    with tempfile.TemporaryDirectory() as d:
        run(args.pre_images, args.blocks, args.depth, Path(d) / "spill")


if __name__ == "__main__":
    main()
