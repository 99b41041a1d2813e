"""Mainnet scale: 250 000 pools loaded from a whitelist and an initial state file, then blocks.

    .venv/bin/python -m benchmarks.bench_scale [--pools 250000] [--blocks 600]
        [--updates 200] [--files DIR]

The whitelist and the state file (`arena.state_file` format) come from
`benchmarks.scale_market` (70 % V2, 30 % V3 with mainnet-like tick counts) and are
written first, or reused from `--files`. The measurement runs in a fresh interpreter so
that its RSS is the arena's alone: `open_pipeline` (the path `arena run` takes: whitelist,
engine, RocksDB spill, initial state) is timed, then `--blocks` blocks in the realistic
mix fill the 128-deep ring and each block's apply is timed around its `EndBlock`. The
load is timed in `--load-runs` fresh interpreters in all (the best and the median are
shown, with the main thread's CPU time): on a shared machine one wall time says little.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arena.pipeline import PipelineConfig, open_pipeline
from arena.snapshot_ring import DEFAULT_DEPTH
from benchmarks.bench_arena import _rss_mb
from benchmarks.common import Row, compare_baseline, percentile, print_report, save_baseline
from benchmarks.scale_market import (
    STATE_BLOCK,
    ScaleMarket,
    build_scale_market,
    pool_key,
    write_scale_files,
)
from exex_bridge import messages as m
from exex_bridge.codec import encode_message

LOAD_BUDGET_S = 5.0
RSS_BUDGET_MB = 1024.0
APPLY_BUDGET_US = 300.0


@dataclass
class ScaleStream:
    """Blocks over the scale market: 45 % V3 swaps, 35 % V2 syncs, 10 % V3 mints and
    burns (a burn takes back an earlier mint), 10 % updates of pools not whitelisted."""

    market: ScaleMarket
    updates: int
    rng: random.Random = field(default_factory=lambda: random.Random(13))
    seq: int = 0
    tip: int = STATE_BLOCK
    minted: list[tuple[int, int, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._v2 = self.market.v2_indices.tolist()
        self._v3 = self.market.v3_indices.tolist()

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _update(self) -> tuple[int, m.Protocol, m.PoolUpdatePayload]:
        rng, r = self.rng, self.rng.random()
        if r < 0.45:
            i = rng.choice(self._v3)
            tick = int(self.market.tick[i]) + rng.randrange(-100, 100)
            sqrt = int((1.0001**tick) ** 0.5 * (1 << 96))
            swap = m.V3Swap(sqrt_price_x96=sqrt, liquidity=rng.randrange(1, 1 << 100), tick=tick)
            return i, m.Protocol.UNISWAP_V3, swap
        if r < 0.80:
            reserves = rng.randrange(1, 1 << 112), rng.randrange(1, 1 << 112)
            sync = m.V2Sync(reserve0=reserves[0], reserve1=reserves[1])
            return rng.choice(self._v2), m.Protocol.UNISWAP_V2, sync
        if r < 0.90:
            return self._liquidity()
        i = self.market.pools + rng.randrange(1000)
        fee = m.CurveFeeUpdate(fee=4_000_000, offpeg_fee_multiplier=20_000_000_000)
        return i, m.Protocol.CURVE_STABLE, fee

    def _liquidity(self) -> tuple[int, m.Protocol, m.V3Liquidity]:
        rng = self.rng
        if self.minted and rng.random() < 0.5:
            i, lower, upper, amount = self.minted.pop(rng.randrange(len(self.minted)))
            burn = m.V3Liquidity(tick_lower=lower, tick_upper=upper, liquidity_delta=-amount)
            return i, m.Protocol.UNISWAP_V3, burn
        i = rng.choice(self._v3)
        spacing = int(self.market.spacing[i])
        lower = (int(self.market.tick[i]) // spacing - rng.randrange(10)) * spacing
        upper = lower + rng.randrange(1, 20) * spacing
        amount = rng.randrange(1, 1 << 80)
        self.minted.append((i, lower, upper, amount))
        mint = m.V3Liquidity(tick_lower=lower, tick_upper=upper, liquidity_delta=amount)
        return i, m.Protocol.UNISWAP_V3, mint

    def block(self) -> Iterator[m.ControlMessage]:
        self.tip += 1
        number = self.tip
        yield m.BeginBlock(
            stream_seq=self._next_seq(),
            block_number=number,
            block_timestamp=0,
            base_fee_per_gas=1,
            is_revert=False,
        )
        for j in range(self.updates):
            i, protocol, payload = self._update()
            event = m.PoolUpdateMessage(
                pool_id=m.PoolAddress(value=pool_key(i)),
                protocol=protocol,
                update_type=m.UpdateType.SWAP,
                block_number=number,
                block_timestamp=0,
                tx_index=j,
                log_index=0,
                is_revert=False,
                update=payload,
            )
            yield m.PoolUpdate(stream_seq=self._next_seq(), event=event)
        yield m.EndBlock(stream_seq=self._next_seq(), block_number=number, num_updates=self.updates)


def measure(folder: Path, pools: int, blocks: int, updates: int) -> dict[str, float]:
    """In a fresh interpreter: load, then run blocks; the figures."""
    rss_start = _rss_mb()
    config = PipelineConfig(
        whitelist=folder / "whitelist.json",
        initial_state=folder / "state.json",
        spill_path=folder / "spill",
    )
    started, started_cpu = time.perf_counter(), time.thread_time()
    pipeline = open_pipeline(config)
    load_s = time.perf_counter() - started
    load_cpu_s = time.thread_time() - started_cpu
    rss_loaded = _rss_mb()
    if blocks == 0:
        return {"load_s": load_s, "load_cpu_s": load_cpu_s}
    stream = ScaleStream(build_scale_market(pools), updates)
    wall = np.zeros(blocks, dtype=np.float64)
    cpu = np.zeros(blocks, dtype=np.float64)
    for k in range(blocks):
        *messages, end = stream.block()
        for msg in messages:  # with its frame, as `feed_frame` hands it on
            pipeline.feed(msg, encode_message(msg) if isinstance(msg, m.PoolUpdate) else None)
        t_wall, t_cpu = time.perf_counter(), time.thread_time()
        pipeline.feed(end)
        wall[k] = (time.perf_counter() - t_wall) * 1e6
        cpu[k] = (time.thread_time() - t_cpu) * 1e6
    engine = pipeline.engine
    rss_ring = _rss_mb()
    if engine.tip_block != stream.tip or len(engine.ring) != min(blocks, DEFAULT_DEPTH):
        raise RuntimeError(f"the engine did not take every block (tip {engine.tip_block})")
    if pipeline.spill is not None:
        pipeline.spill.close()
    return {
        "load_s": load_s,
        "load_cpu_s": load_cpu_s,
        "rss_start_mb": rss_start,
        "rss_loaded_mb": rss_loaded,
        "rss_ring_mb": rss_ring,
        "apply_p50_us": percentile(wall.tolist(), 50),
        "apply_p99_us": percentile(wall.tolist(), 99),
        "apply_cpu_p50_us": percentile(cpu.tolist(), 50),
        "apply_cpu_p99_us": percentile(cpu.tolist(), 99),
        "stale_pools": float(engine.stale_count()),
        "tick_pools": float(len(engine.ticks.pools())),
    }


def report(args: argparse.Namespace, figures: dict[str, float], ticks: int, made: str) -> None:
    scale = f"{args.pools:,} pools (70 % V2, 30 % V3, {ticks:,} ticks)"
    load_s, rss = figures["load_best_s"], figures["rss_ring_mb"]
    p99 = figures["apply_p99_us"]
    loads = (
        f"best {load_s:.2f} s, median {figures['load_median_s']:.2f} s of {args.load_runs}; "
        f"main thread CPU {figures['load_cpu_best_s']:.2f} s"
    )
    rows = [
        Row("whitelist + initial state load", scale, loads, "≤ 5 s", load_s <= LOAD_BUDGET_S),
        Row(
            "memory (RSS) after load",
            scale,
            f"{figures['rss_loaded_mb']:.0f} MB (interpreter {figures['rss_start_mb']:.0f} MB)",
            "—",
            None,
        ),
        Row(
            "memory (RSS), ring full",
            f"{scale}, {DEFAULT_DEPTH}-deep ring",
            f"{rss:.0f} MB",
            "≤ 1 GB",
            rss <= RSS_BUDGET_MB,
        ),
        Row(
            "apply block (wall)",
            f"{args.updates} updates, {args.blocks} blocks",
            f"p50 {figures['apply_p50_us']:.0f} µs, p99 {p99:.0f} µs",
            "p99 ≤ 300 µs (at 50 000 pools)",
            None,
        ),
        Row(
            "apply block (thread CPU)",
            f"{args.updates} updates, {args.blocks} blocks",
            f"p50 {figures['apply_cpu_p50_us']:.0f} µs, p99 {figures['apply_cpu_p99_us']:.0f} µs",
            "—",
            None,
        ),
        Row("files (not budgeted)", scale, made, "—", None),
    ]
    print_report("arena at mainnet scale: load, memory, apply", rows)
    for line in compare_baseline("scale", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"saved {save_baseline('scale', figures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=250_000)
    parser.add_argument("--blocks", type=int, default=600)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--files", type=Path, help="folder to write (or reuse) the files in")
    parser.add_argument("--load-runs", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()
    if args.measure:  # the child: figures as JSON on stdout
        print(json.dumps(measure(args.files, args.pools, args.blocks, args.updates)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.files or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        ticks_file = folder / "ticks.txt"
        if (folder / "state.json").exists() and ticks_file.exists():
            ticks, made = int(ticks_file.read_text()), f"reused from {folder}"
        else:
            _, _, ticks = write_scale_files(build_scale_market(args.pools), folder)
            ticks_file.write_text(str(ticks))
            made = f"written in {time.perf_counter() - started:.1f} s"
        figures = _child(args, folder, args.blocks)
        loads = [figures] + [_child(args, folder, 0) for _ in range(args.load_runs - 1)]
    figures["load_best_s"] = min(f["load_s"] for f in loads)
    figures["load_median_s"] = float(np.median([f["load_s"] for f in loads]))
    figures["load_cpu_best_s"] = min(f["load_cpu_s"] for f in loads)
    report(args, figures, ticks, made)


def _child(args: argparse.Namespace, folder: Path, blocks: int) -> dict[str, float]:
    """The figures of `measure` run in a fresh interpreter, over a fresh spill."""
    shutil.rmtree(folder / "spill", ignore_errors=True)
    command = [sys.executable, "-m", "benchmarks.bench_scale", "--measure"]
    command += ["--files", str(folder), "--pools", str(args.pools)]
    command += ["--blocks", str(blocks), "--updates", str(args.updates)]
    child = subprocess.run(command, check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(child.stdout.splitlines()[-1])
    return figures


if __name__ == "__main__":
    main()
