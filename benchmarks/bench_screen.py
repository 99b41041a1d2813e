"""Throughput of the vectorized Möbius screen over a synthetic 50 000-pool market.

.venv/bin/python -m benchmarks.bench_screen [--cycles 500000] [--pools 50000]
                                            [--tokens 3000] [--runs 9] [--save-baseline]

Builds the market of `benchmarks.synthetic_market` (WETH and USDC hubs, both base tokens),
its cycle graph and hop parameters, then times `screen(graph, params, ids)` on `--cycles`
live cycle ids drawn at random (sorted, as `cycles_of` returns them). Budget: DESIGN.md,
"screen cycles (vectorized) ≥ 10 M cycles/s per core". Wall time counts whatever else
the machine runs; CPU time (this process only) is the per-core figure.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import Row, compare_baseline, median, print_report, save_baseline
from benchmarks.synthetic_market import build_market, load_engine
from pathfinder.cycle_graph import CycleGraph
from pathfinder.hop_params import HopParams
from pathfinder.screen import screen

BUDGET_CYCLES_PER_S = 10_000_000


def build(pools: int, tokens: int, seed: int) -> tuple[CycleGraph, HopParams]:
    market = build_market(pools, tokens, seed=seed)
    engine = load_engine(market)
    graph = CycleGraph((market.weth, market.usdc))
    graph.add_pools(
        (p.index, market.tokens[p.token0].address, market.tokens[p.token1].address)
        for p in market.pools
    )
    graph.compact()
    params = HopParams()
    params.refresh(engine, np.arange(len(market.pools), dtype=np.int64))
    return graph, params


def time_screen(
    graph: CycleGraph, params: HopParams, ids: np.ndarray, runs: int
) -> tuple[list[float], list[float], int]:
    walls, cpus = [], []
    profitable = 0
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = screen(graph, params, ids)
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
        profitable = int(np.count_nonzero(result.profit > 0))
    return walls, cpus, profitable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=500_000)
    parser.add_argument("--pools", type=int, default=50_000)
    parser.add_argument("--tokens", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--save-baseline", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    graph, params = build(args.pools, args.tokens, args.seed)
    setup_s = time.perf_counter() - started
    live = np.flatnonzero(graph.alive[: graph.count])
    if len(live) < args.cycles:
        parser.error(f"the market has {len(live)} cycles; raise --pools or lower --cycles")
    rng = np.random.default_rng(args.seed)
    ids = np.sort(rng.choice(live, size=args.cycles, replace=False)).astype(np.int64)
    screen(graph, params, ids)  # warm-up: page in the arrays
    walls, cpus, profitable = time_screen(graph, params, ids, args.runs)

    wall_rate = args.cycles / median(walls)
    cpu_rate = args.cycles / median(cpus)
    scale = f"{args.cycles:,} of {len(live):,} cycles"
    budget = f"≥ {BUDGET_CYCLES_PER_S / 1e6:.0f} M cycles/s"
    rows = [
        Row(
            "screen, CPU time (per core)",
            scale,
            f"{cpu_rate / 1e6:.1f} M cycles/s",
            budget,
            cpu_rate >= BUDGET_CYCLES_PER_S,
        ),
        Row(
            "screen, wall time",
            scale,
            f"{wall_rate / 1e6:.1f} M cycles/s",
            budget,
            wall_rate >= BUDGET_CYCLES_PER_S,
        ),
        Row(
            "screen call, median",
            scale,
            f"{median(walls) * 1e3:.1f} ms wall, {median(cpus) * 1e3:.1f} ms CPU",
            "—",
            None,
        ),
        Row("cycles screened profitable", scale, f"{profitable:,}", "—", None),
    ]
    print_report(
        f"Vectorized screen: {args.pools:,} pools, {args.tokens:,} tokens, median of "
        f"{args.runs} runs (setup {setup_s:.1f} s)",
        rows,
    )
    figures = {"screen_cycles_per_s_cpu": cpu_rate, "screen_cycles_per_s_wall": wall_rate}
    for line in compare_baseline("bench_screen", figures):
        print(line)
    if args.save_baseline:
        print(f"baseline saved to {save_baseline('bench_screen', figures)}")


if __name__ == "__main__":
    main()
