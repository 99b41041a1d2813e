"""Long run: is the per-block cost and the memory flat over 100 000 blocks?

    .venv/bin/python -m benchmarks.bench_longrun [--pools 50000] [--updates 200]
        [--blocks 100000] [--window 10000]

The stream goes through the whole pipeline (assembler, engine, ring, RocksDB spill at its
default depth, latency summary) as `arena run` drives it, with the realistic mix of
`bench_arena` over half V2, half V3 pools. Now and then the tip is reverted on its own
(reth's "reverted") and a shallow reorg envelope replaces the last 1-3 blocks. The apply
time of every committed block is taken around its `EndBlock`, as wall time and as the
main thread's CPU time (which waiting for a core does not inflate); RSS is read every 500
blocks. The first window's figures are compared with the last window's (budget: within
10 %), with the best 1 000-block median of each as the measure other work on a shared
machine barely moves, and the size of every per-block structure is printed against its
bound.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from arena.block_assembler import DUPLICATE_WINDOW
from arena.pipeline import Pipeline
from arena.spill import DEFAULT_SPILL_DEPTH, RocksSpill
from benchmarks.bench_arena import _rss_mb, build_engine, make_block
from benchmarks.common import Row, compare_baseline, percentile, print_report, save_baseline
from exex_bridge import messages as m
from exex_bridge.codec import encode_message

REVERT_EVERY = 1499  # a lone revert of the tip, then the chain goes on
REORG_EVERY = 997  # an envelope replacing the last 1-3 blocks
RSS_EVERY = 500


@dataclass
class LongRunStream:
    """Messages of a long stream with `stream_seq` in order; remembers recent blocks so
    that reverts can send their updates back in reverse."""

    pools: int
    updates: int
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    seq: int = 0
    tip: int = 0
    recent: deque[list[m.PoolUpdateMessage]] = field(default_factory=lambda: deque(maxlen=8))

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _begin(self, number: int, revert: bool) -> m.BeginBlock:
        return m.BeginBlock(
            stream_seq=self._next_seq(),
            block_number=number,
            block_timestamp=0,
            base_fee_per_gas=1,
            is_revert=revert,
        )

    def _framed(
        self, begin: m.BeginBlock, events: list[m.PoolUpdateMessage]
    ) -> Iterator[m.ControlMessage]:
        yield begin
        for event in events:
            yield m.PoolUpdate(stream_seq=self._next_seq(), event=event)
        yield m.EndBlock(
            stream_seq=self._next_seq(), block_number=begin.block_number, num_updates=len(events)
        )

    def commit(self) -> Iterator[m.ControlMessage]:
        self.tip += 1
        events = make_block(self.rng, self.tip, self.pools, self.updates)
        self.recent.append(events)
        return self._framed(self._begin(self.tip, False), events)

    def revert(self) -> Iterator[m.ControlMessage]:
        events = [msgspec.structs.replace(e, is_revert=True) for e in reversed(self.recent.pop())]
        begin = self._begin(self.tip, True)
        self.tip -= 1
        return self._framed(begin, events)

    def reorg(self, depth: int) -> Iterator[m.ControlMessage]:
        old = m.ReorgRange(first_block=self.tip - depth + 1, last_block=self.tip, block_count=depth)
        yield m.ReorgStart(stream_seq=self._next_seq(), old_range=old, new_range=old)
        for _ in range(depth):
            yield from self.revert()
        for _ in range(depth):
            yield from self.commit()
        yield m.ReorgComplete(stream_seq=self._next_seq(), final_tip_block=self.tip)


@dataclass
class Measures:
    apply_us: npt.NDArray[np.float64]
    apply_cpu_us: npt.NDArray[np.float64]
    rss_mb: list[tuple[int, float]] = field(default_factory=list)  # (block, RSS)
    applied: int = 0
    reverts: int = 0
    reorgs: int = 0


def run(pipeline: Pipeline, stream: LongRunStream, blocks: int) -> Measures:
    measures = Measures(
        apply_us=np.zeros(blocks, dtype=np.float64),
        apply_cpu_us=np.zeros(blocks, dtype=np.float64),
    )
    feed, clock, cpu = pipeline.feed, time.perf_counter, time.thread_time
    for k in range(blocks):
        if k and k % REORG_EVERY == 0:
            for msg in stream.reorg(1 + k % 3):
                feed(msg)
            measures.reorgs += 1
        elif k and k % REVERT_EVERY == 0:
            for msg in stream.revert():
                feed(msg)
            measures.reverts += 1
        *messages, end = stream.commit()
        for msg in messages:  # with its frame, as `feed_frame` hands it on
            feed(msg, encode_message(msg) if isinstance(msg, m.PoolUpdate) else None)
        started, started_cpu = clock(), cpu()
        feed(end)
        measures.apply_us[k] = (clock() - started) * 1e6
        measures.apply_cpu_us[k] = (cpu() - started_cpu) * 1e6
        measures.applied += 1
        if (k + 1) % RSS_EVERY == 0:
            measures.rss_mb.append((k + 1, _rss_mb()))
    return measures


def structure_rows(pipeline: Pipeline) -> list[Row]:
    """Each per-block structure's size at the end of the run against its bound."""
    engine = pipeline.engine
    spill = engine.ring.spill
    spill_depth = spill.depth if spill is not None else 0
    history_bound = engine.ring.depth + spill_depth
    assembler = pipeline.assembler
    sizes = [
        ("snapshot ring", len(engine.ring), engine.ring.depth, "blocks"),
        ("RocksDB spill", len(spill.blocks()) if spill else 0, spill_depth, "blocks"),
        ("status history", len(engine._status_before), history_bound, "blocks"),
        ("duplicate window", len(assembler._recent), DUPLICATE_WINDOW, "messages"),
        ("changed pools (drained)", len(engine.changed), len(engine.registry), "pools"),
        ("apply latency histogram", pipeline.apply_latency.nbytes, 20_000, "bytes"),
        (
            "metric series",
            sum(len(metric.samples) for metric in engine.metrics.registry.collect()),
            200,
            "series",
        ),
    ]
    return [
        Row(f"size: {name}", "end of run", f"{size:,} {unit}", f"≤ {bound:,}", size <= bound)
        for name, size, bound, unit in sizes
    ]


def _flat_row(stage: str, scale: str, first: float, last: float, unit: str) -> tuple[Row, float]:
    change = (last - first) / first * 100
    measured = f"{first:.0f} {unit} → {last:.0f} {unit} ({change:+.1f} %)"
    return Row(stage, scale, measured, "within 10 %", abs(change) <= 10), change


def best_chunk_median(values: npt.NDArray[np.float64], chunk: int = 1000) -> float:
    """The lowest median of `chunk`-block runs: what a block costs when the machine lets
    the arena run. Other processes on a shared machine raise every percentile of a
    window, but a cost that grows with the run raises this one too."""
    usable = len(values) - len(values) % chunk or len(values)
    runs = values[:usable].reshape(-1, min(chunk, usable))
    return float(np.median(runs, axis=1).min())


def window_rows(measures: Measures, window: int, scale: str) -> tuple[list[Row], dict[str, float]]:
    blocks = len(measures.apply_us)
    figures = {
        "apply_p99_first_us": percentile(measures.apply_us[:window].tolist(), 99),
        "apply_p99_last_us": percentile(measures.apply_us[-window:].tolist(), 99),
        "apply_cpu_p99_first_us": percentile(measures.apply_cpu_us[:window].tolist(), 99),
        "apply_cpu_p99_last_us": percentile(measures.apply_cpu_us[-window:].tolist(), 99),
        "apply_p50_first_us": percentile(measures.apply_us[:window].tolist(), 50),
        "apply_p50_last_us": percentile(measures.apply_us[-window:].tolist(), 50),
        "rss_first_mb": max(r for b, r in measures.rss_mb if b <= window),
        "rss_last_mb": max(r for b, r in measures.rss_mb if b > blocks - window),
    }
    figures["apply_cpu_best_chunk_first_us"] = best_chunk_median(measures.apply_cpu_us[:window])
    figures["apply_cpu_best_chunk_last_us"] = best_chunk_median(measures.apply_cpu_us[-window:])
    rows = [
        _flat_row(f"{name}, first vs last window", scale, first, last, unit)[0]
        for name, first, last, unit in (
            ("apply p99 (wall)", figures["apply_p99_first_us"], figures["apply_p99_last_us"], "µs"),
            (
                "apply p99 (thread CPU)",
                figures["apply_cpu_p99_first_us"],
                figures["apply_cpu_p99_last_us"],
                "µs",
            ),
            ("apply p50 (wall)", figures["apply_p50_first_us"], figures["apply_p50_last_us"], "µs"),
            ("RSS (max in window)", figures["rss_first_mb"], figures["rss_last_mb"], "MB"),
            (
                "apply p50 (thread CPU), best 1 000-block chunk",
                figures["apply_cpu_best_chunk_first_us"],
                figures["apply_cpu_best_chunk_last_us"],
                "µs",
            ),
        )
    ]
    return rows, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(args.pools, Path(tmp) / "spill")
        spill = engine.ring.spill
        pipeline = Pipeline(engine, spill=spill if isinstance(spill, RocksSpill) else None)
        stream = LongRunStream(args.pools, args.updates)
        measures = run(pipeline, stream, args.blocks)
        size_rows = structure_rows(pipeline)
        on_disk = sum(f.stat().st_size for f in (Path(tmp) / "spill").iterdir())
        size_rows.append(
            Row("size: spill on disk", "end of run", f"{on_disk / 2**20:.0f} MB", "—", None)
        )
    elapsed = time.perf_counter() - started
    scale = f"{args.updates} updates, {args.pools:,} pools, {args.window:,}-block windows"
    rows, figures = window_rows(measures, args.window, scale)
    rows.append(
        Row(
            "run",
            f"{args.blocks:,} blocks, spill depth {DEFAULT_SPILL_DEPTH}",
            f"{elapsed:.0f} s wall; {measures.reverts} lone reverts, {measures.reorgs} reorgs",
            "—",
            None,
        )
    )
    print_report("arena: 100 000 blocks, flat over time", rows + size_rows)
    for line in compare_baseline("longrun", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline('longrun', figures)}")


if __name__ == "__main__":
    main()
