"""EndBlock → opportunities: the path recalculation after each block, at mainnet scale.

.venv/bin/python -m benchmarks.bench_endblock [--pools 50000] [--tokens 3000]
        [--updates 200] [--blocks 300] [--far-share 0.05] [--far-bps 40] [--profile]
        [--save-baseline]

A synthetic market (`benchmarks.synthetic_market`: WETH and USDC hubs, both base tokens,
prices within a few bps of fair) is loaded into an `ArenaEngine` and a `PathRecalculator`.
Each block re-prices `--updates` pools (a share `--far-share` of them `--far-bps` off
fair: those make the arbitrages) and mints/burns a few V3 positions; the block is applied
with `engine.apply_block` (timed on its own), then `on_settled` is timed: affected
cycles, screen, gas, top-k, exact verification, emission. Budgets: DESIGN.md, "apply a
committed block p99 ≤ 300 µs" and "EndBlock → opportunities out p99 ≤ 5 ms". Wall time
counts whatever else the machine runs; CPU time (this process only) is shown beside it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from dataclasses import dataclass, field

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
from pathfinder.recalculator import PathfinderConfig, PathRecalculator

BUDGET_RECALC_P99_MS = 5.0
BUDGET_APPLY_P99_US = 300.0


@dataclass
class Samples:
    apply_wall: list[float] = field(default_factory=list)  # µs
    apply_cpu: list[float] = field(default_factory=list)
    recalc_wall: list[float] = field(default_factory=list)  # ms
    recalc_cpu: list[float] = field(default_factory=list)
    cycles: list[float] = field(default_factory=list)
    quotes: list[float] = field(default_factory=list)
    found: list[float] = field(default_factory=list)


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
    samples.apply_wall.append(apply_wall * 1e6)
    samples.apply_cpu.append(apply_cpu * 1e6)
    samples.recalc_wall.append(recalc_wall * 1e3)
    samples.recalc_cpu.append(recalc_cpu * 1e3)
    samples.cycles.append(len(recalculator.graph.cycles_of(sorted(settled.changed))))
    samples.quotes.append(recalculator.quoter.quotes - quotes)
    samples.found.append(len(found))


def p50_p99(values: list[float], unit: str, digits: int = 2) -> str:
    return f"{median(values):.{digits}f} / {percentile(values, 99):.{digits}f} {unit}"


def report(args: argparse.Namespace, s: Samples, cycles_total: int, setup_s: float) -> None:
    scale = f"{args.pools // 1000}k pools, {cycles_total // 1000}k cycles, {args.updates} upd"
    recalc_budget = f"p99 ≤ {BUDGET_RECALC_P99_MS:.0f} ms"
    apply_budget = f"p99 ≤ {BUDGET_APPLY_P99_US:.0f} µs"
    rows = [
        Row(
            "EndBlock → opportunities, wall (p50 / p99)",
            scale,
            p50_p99(s.recalc_wall, "ms"),
            recalc_budget,
            percentile(s.recalc_wall, 99) <= BUDGET_RECALC_P99_MS,
        ),
        Row(
            "EndBlock → opportunities, CPU (p50 / p99)",
            scale,
            p50_p99(s.recalc_cpu, "ms"),
            recalc_budget,
            percentile(s.recalc_cpu, 99) <= BUDGET_RECALC_P99_MS,
        ),
        Row(
            "apply_block, wall (p50 / p99)",
            scale,
            p50_p99(s.apply_wall, "µs", 0),
            apply_budget,
            percentile(s.apply_wall, 99) <= BUDGET_APPLY_P99_US,
        ),
        Row(
            "apply_block, CPU (p50 / p99)",
            scale,
            p50_p99(s.apply_cpu, "µs", 0),
            apply_budget,
            percentile(s.apply_cpu, 99) <= BUDGET_APPLY_P99_US,
        ),
        Row("cycles screened per block (p50 / p99)", scale, p50_p99(s.cycles, "", 0), "—", None),
        Row("exact hop quotes per block (p50 / p99)", scale, p50_p99(s.quotes, "", 0), "—", None),
        Row(
            "opportunities per block (mean / max)",
            scale,
            f"{sum(s.found) / len(s.found):.2f} / {max(s.found):.0f}",
            "—",
            None,
        ),
    ]
    print_report(
        f"EndBlock → opportunities: {len(s.recalc_wall)} blocks after {args.warmup} warm-up "
        f"(far share {args.far_share}, far {args.far_bps} bps; setup {setup_s:.1f} s)",
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pools", type=int, default=50_000)
    parser.add_argument("--tokens", type=int, default=3_000)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--blocks", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--far-share", type=float, default=0.05)
    parser.add_argument("--far-bps", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the recalculations")
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    market = build_market(args.pools, args.tokens, seed=args.seed)
    engine = load_engine(market)
    config = PathfinderConfig(base_tokens=(market.weth, market.usdc), gas_token=market.weth)
    recalculator = PathRecalculator(engine, config)
    stream = BlockStream(
        market, updates=args.updates, far_share=args.far_share, far_bps=args.far_bps
    )
    setup_s = time.perf_counter() - started
    for _ in range(args.warmup):
        run_block(engine, recalculator, stream, None)
    samples = Samples()
    profiler = cProfile.Profile() if args.profile else None
    for _ in range(args.blocks):
        run_block(engine, recalculator, stream, samples, profiler)

    report(args, samples, recalculator.graph.live_count(), setup_s)
    figures = {
        "recalc_p50_ms_wall": median(samples.recalc_wall),
        "recalc_p99_ms_wall": percentile(samples.recalc_wall, 99),
        "recalc_p99_ms_cpu": percentile(samples.recalc_cpu, 99),
        "apply_p99_us_wall": percentile(samples.apply_wall, 99),
    }
    for line in compare_baseline("bench_endblock", figures, higher_is_better=False):
        print(line)
    if args.save_baseline:
        print(f"baseline saved to {save_baseline('bench_endblock', figures)}")
    if profiler is not None:
        print("\ncProfile of on_settled over the measured blocks (top 20 by own time):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
