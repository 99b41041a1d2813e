"""EndBlock → opportunities: the path recalculation after each block, at mainnet scale.

.venv/bin/python -m benchmarks.bench_endblock [--pools 50000] [--tokens 3000]
        [--updates 200] [--blocks 300] [--far-share 0.05] [--far-bps 40]
        [--move-bps 150] [--scenario both|calm|hot] [--profile] [--save-baseline]

A synthetic market (`benchmarks.synthetic_market`: WETH and USDC hubs, both base tokens,
prices within a few bps of fair) is loaded into an `ArenaEngine` and a `PathRecalculator`.
Two scenarios run on it, one after the other:
- calm: each block re-prices `--updates` pools (a share `--far-share` of them `--far-bps`
  off fair: those make the arbitrages) and mints/burns a few V3 positions;
- hot: the same, plus a market-wide move in every block: one token's fair value jumps by
  `--move-bps` and half of the updates re-price its pools while its other pools lag, so
  dozens of cycles are profitable in the same block.
Each block is applied with `engine.apply_block` (timed on its own), then `on_settled` is
timed: affected cycles, screen, gas, top-k, exact verification, emission. Budgets:
DESIGN.md, "apply a committed block p99 ≤ 300 µs" and "EndBlock → opportunities out,
calm and hot market, p99 ≤ 5 ms". Wall time counts whatever else the machine runs; CPU
time (this process only) is shown beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from benchmarks.common import (
    Row,
    compare_baseline,
    median,
    percentile,
    print_report,
    save_baseline,
)
from benchmarks.synthetic_market import BlockStream, build_market, load_engine
from pathfinder.bounded_search import Verified
from pathfinder.exact_quote import QuoteBatch
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.screen import screen

BUDGET_RECALC_P99_MS = 5.0
BUDGET_APPLY_P99_US = 300.0


@dataclass
class Samples:
    apply_wall: list[float] = field(default_factory=list)  # µs
    apply_cpu: list[float] = field(default_factory=list)
    recalc_wall: list[float] = field(default_factory=list)  # ms
    recalc_cpu: list[float] = field(default_factory=list)
    cycles: list[float] = field(default_factory=list)
    profitable: list[float] = field(default_factory=list)  # screened profit > 0
    quotes: list[float] = field(default_factory=list)
    found: list[float] = field(default_factory=list)
    evaluations: list[float] = field(default_factory=list)  # per verified candidate


class CountingVerifier:
    """Records each verification's exact cycle quotes (wraps `ExactQuoter.batch`)."""

    def __init__(self, recalculator: PathRecalculator) -> None:
        self.quoter = recalculator.quoter
        self.inner = recalculator.quoter.batch
        self.evaluations: list[int] = []
        recalculator.quoter.batch = self  # type: ignore[method-assign]

    def __call__(self) -> QuoteBatch:
        batch = self.inner()
        verify = batch.verify

        def counted(path: Sequence[tuple[int, bool]], guess: int) -> Verified:
            verified = verify(path, guess)
            self.evaluations.append(verified.evaluations)
            return verified

        batch.verify = counted  # type: ignore[method-assign]
        return batch

    def detach(self) -> None:
        self.quoter.batch = self.inner  # type: ignore[method-assign]


def run_block(
    engine: ArenaEngine,
    recalculator: PathRecalculator,
    stream: BlockStream,
    samples: Samples | None,
    profiler: cProfile.Profile | None = None,
) -> None:
    begin, events = stream.next_block()
    wall, cpu = time.perf_counter(), time.process_time()
    engine.apply_block(begin, events)
    apply_cpu, apply_wall = time.process_time() - cpu, time.perf_counter() - wall
    settled = Settled(
        block=begin.block_number,
        base_fee_per_gas=begin.base_fee_per_gas,
        changed=frozenset(engine.take_changed()),
        after_reorg=False,
        sync=engine.sync_state,
    )
    quotes = recalculator.quoter.quotes
    if profiler is not None:
        profiler.enable()
    wall, cpu = time.perf_counter(), time.process_time()
    found = recalculator.on_settled(settled)
    recalc_cpu, recalc_wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler is not None:
        profiler.disable()
    if samples is None:
        return
    cycles = recalculator.graph.cycles_of(sorted(settled.changed))
    screened = screen(recalculator.graph, recalculator.params, cycles)
    samples.apply_wall.append(apply_wall * 1e6)
    samples.apply_cpu.append(apply_cpu * 1e6)
    samples.recalc_wall.append(recalc_wall * 1e3)
    samples.recalc_cpu.append(recalc_cpu * 1e3)
    samples.cycles.append(len(cycles))
    samples.profitable.append(int(np.count_nonzero(screened.profit > 0)))
    samples.quotes.append(recalculator.quoter.quotes - quotes)
    samples.found.append(len(found))


def p50_p99(values: Sequence[float], unit: str, digits: int = 2) -> str:
    if not values:
        return "—"
    return f"{median(values):.{digits}f} / {percentile(values, 99):.{digits}f} {unit}"


def mean_p99(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{sum(values) / len(values):.2f} / {percentile(values, 99):.0f} (max {max(values):.0f})"


def scenario_rows(name: str, scale: str, s: Samples) -> list[Row]:
    recalc_budget = f"p99 ≤ {BUDGET_RECALC_P99_MS:.0f} ms"
    apply_budget = f"p99 ≤ {BUDGET_APPLY_P99_US:.0f} µs"
    return [
        Row(
            f"{name}: EndBlock → opportunities, wall (p50 / p99)",
            scale,
            p50_p99(s.recalc_wall, "ms"),
            recalc_budget,
            percentile(s.recalc_wall, 99) <= BUDGET_RECALC_P99_MS,
        ),
        Row(
            f"{name}: EndBlock → opportunities, CPU (p50 / p99)",
            scale,
            p50_p99(s.recalc_cpu, "ms"),
            recalc_budget,
            percentile(s.recalc_cpu, 99) <= BUDGET_RECALC_P99_MS,
        ),
        Row(
            f"{name}: apply_block, wall (p50 / p99)",
            scale,
            p50_p99(s.apply_wall, "µs", 0),
            apply_budget,
            percentile(s.apply_wall, 99) <= BUDGET_APPLY_P99_US,
        ),
        Row(
            f"{name}: cycles screened per block (p50 / p99)",
            scale,
            p50_p99(s.cycles, "", 0),
            "—",
            None,
        ),
        Row(
            f"{name}: screened profitable cycles per block (p50 / p99)",
            scale,
            p50_p99(s.profitable, "", 0),
            "≥ 32 (hot)",
            None if name == "calm" else percentile(s.profitable, 50) >= 32,
        ),
        Row(
            f"{name}: exact cycle quotes per candidate (mean / p99)",
            scale,
            mean_p99(s.evaluations),
            "≤ 12 each",
            max(s.evaluations, default=0) <= 12,
        ),
        Row(
            f"{name}: exact hop quotes per block (p50 / p99)",
            scale,
            p50_p99(s.quotes, "", 0),
            "—",
            None,
        ),
        Row(
            f"{name}: opportunities per block (mean / max)",
            scale,
            f"{sum(s.found) / len(s.found):.2f} / {max(s.found):.0f}",
            "—",
            None,
        ),
    ]


def run_scenario(
    args: argparse.Namespace,
    engine: ArenaEngine,
    recalculator: PathRecalculator,
    stream: BlockStream,
    profiler: cProfile.Profile | None,
) -> Samples:
    counter = CountingVerifier(recalculator)
    for _ in range(args.warmup):
        run_block(engine, recalculator, stream, None)
    counter.evaluations.clear()
    samples = Samples()
    for _ in range(args.blocks):
        run_block(engine, recalculator, stream, samples, profiler)
    samples.evaluations = [float(e) for e in counter.evaluations]
    counter.detach()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pools", type=int, default=50_000)
    parser.add_argument("--tokens", type=int, default=3_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--far-share", type=float, default=0.05)
    parser.add_argument("--far-bps", type=float, default=40.0)
    parser.add_argument("--move-bps", type=float, default=150.0)
    parser.add_argument("--scenario", choices=("both", "calm", "hot"), default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the recalculations")
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    market = build_market(args.pools, args.tokens, seed=args.seed)
    engine = load_engine(market)
    config = PathfinderConfig(base_tokens=(market.weth, market.usdc), gas_token=market.weth)
    recalculator = PathRecalculator(engine, config)
    setup_s = time.perf_counter() - started
    profiler = cProfile.Profile() if args.profile else None
    scale = (
        f"{args.pools // 1000}k pools, {recalculator.graph.live_count() // 1000}k cycles, "
        f"{args.updates} upd"
    )
    rows: list[Row] = []
    figures: dict[str, float] = {}
    block = None
    for name in ("calm", "hot") if args.scenario == "both" else (args.scenario,):
        stream = BlockStream(
            market,
            updates=args.updates,
            far_share=args.far_share,
            far_bps=args.far_bps,
            move_bps=args.move_bps if name == "hot" else 0.0,
        )
        if block is not None:
            stream.block = block
        samples = run_scenario(args, engine, recalculator, stream, profiler)
        block = stream.block
        rows += scenario_rows(name, scale, samples)
        prefix = "" if name == "calm" else "hot_"
        figures |= {
            f"{prefix}recalc_p50_ms_wall": median(samples.recalc_wall),
            f"{prefix}recalc_p99_ms_wall": percentile(samples.recalc_wall, 99),
            f"{prefix}recalc_p99_ms_cpu": percentile(samples.recalc_cpu, 99),
            f"{prefix}apply_p99_us_wall": percentile(samples.apply_wall, 99),
        }
    print_report(
        f"EndBlock → opportunities: {args.blocks} blocks per scenario after {args.warmup} "
        f"warm-up (far share {args.far_share}, far {args.far_bps} bps, hot move "
        f"{args.move_bps} bps; setup {setup_s:.1f} s)",
        rows,
    )
    for line in compare_baseline("bench_endblock", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"baseline saved to {save_baseline('bench_endblock', figures)}")
    if profiler is not None:
        print("\ncProfile of on_settled over the measured blocks (top 20 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
