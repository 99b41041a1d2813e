"""The vectorized screen and the cycle graph against independent exact references.

Tolerances, and why:
- V2 (exhaustive search over every integer input): the exact cycle floors each hop's
  output, losing < 1 unit of that hop's output token, which is worth at most the
  downstream cycle's derivative at 0 (the product of the later hops' γ·r_out/r_in) in the
  start token. So the exact profit at the screened input may trail the exact integer
  optimum by `1 + Σ_h D_h` units (+1 for truncating the screened input to an integer)
  plus 1e-9 of the optimum for float64 rounding in the closed form. The real-valued
  profit is an upper bound of every exact profit, so the screen may not be beaten by
  more than float rounding (1e-9 relative).
- V3 (virtual reserves inside the current range): exact up to rounding. A swap step
  floors the input less fee and rounds the price move (amountIn) and the fee up, so it
  may waste ~2 units of the input token, and it floors amountOut (1 unit of the output
  token). We allow 8 units of both tokens per V3 hop (a hop inside one range takes at
  most a couple of steps), 1 output unit per V2 hop, each unit valued at twice the
  token's price in the start token; plus 1e-9 relative for float64. At tiny inputs (a
  few raw units of a 6-decimals token worth 10^12 wei each) this slack is what dominates.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
import numpy.typing as npt
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from arena.registry import PoolKind
from pathfinder.cycle_graph import CycleGraph
from pathfinder.exact_quote import ExactQuoter
from pathfinder.hop_params import HopParams
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.screen import ScreenResult, screen
from pathfinder.v2_math import fee_fraction
from pathfinder.v3_swap import V3SwapState, swap
from tests.pathfinder.strategies import SMALL, Market, markets, v2_cycles

CycleKey = tuple[bytes, tuple[tuple[int, bool], ...]]  # start token, ((pool, zero_for_one), …)
FLOAT_REL = 1e-9
EXHAUSTIVE_LIMIT = 4_000_000


def screened(market: Market) -> tuple[CycleGraph, ScreenResult]:
    engine = market.engine
    graph = CycleGraph([market.weth])
    graph.add_pools((s.index, s.token0.address, s.token1.address) for s in market.pools)
    graph.compact()
    params = HopParams()
    params.refresh(engine, np.arange(len(engine.registry), dtype=np.int64))
    live = np.flatnonzero(graph.alive[: graph.count]).astype(np.int64)
    return graph, screen(graph, params, live)


def v2_hops(market: Market, path: list[tuple[int, bool]]) -> list[tuple[int, int, int]]:
    """(reserve_in, reserve_out, fee_bps) per hop."""
    hops = []
    for pool, zero_for_one in path:
        r0, r1 = market.engine.table.reserves(pool)
        fee_bps = market.pools[pool].fee // 100
        hops.append((r0, r1, fee_bps) if zero_for_one else (r1, r0, fee_bps))
    return hops


def exhaustive_best(hops: list[tuple[int, int, int]], limit: int) -> tuple[int, int]:
    """(best exact profit, its input) over every input 1..limit, getAmountOut in int64."""
    x = np.arange(1, limit + 1, dtype=np.int64)
    amount = x
    for r_in, r_out, fee_bps in hops:
        kept, scale = fee_fraction(fee_bps)
        with_fee = amount * kept
        amount = with_fee * r_out // (r_in * scale + with_fee)
    profit = amount - x
    best = int(np.argmax(profit))
    return int(profit[best]), best + 1


def downstream_slack(hops: list[tuple[int, int, int]]) -> Fraction:
    """Σ over hops of the most one unit of its output can be worth at the cycle's end."""
    slack, rate = Fraction(0), Fraction(1)
    for r_in, r_out, fee_bps in reversed(hops):
        slack += rate
        kept, scale = fee_fraction(fee_bps)
        rate *= Fraction(kept * r_out, scale * r_in)
    return slack


def break_even(hops: list[tuple[int, int, int]]) -> Fraction:
    """(K - M) / N of the composed Möbius map, in exact rationals (0 if K <= M)."""
    k, m, n = Fraction(1), Fraction(1), Fraction(0)
    for r_in, r_out, fee_bps in hops:
        kept, scale = fee_fraction(fee_bps)
        gamma = Fraction(kept, scale)
        k, m, n = k * gamma * r_out, m * r_in, r_in * n + gamma * k
    return max(Fraction(0), (k - m) / n)


# -- (a) V2 cycles: screen vs an exhaustive exact integer search ------------------------
@settings(max_examples=120, deadline=None)
@given(market=st.sampled_from([2, 3]).flatmap(lambda hops: v2_cycles(hops, scale=SMALL)))
def test_v2_screen_is_within_flooring_of_the_exact_integer_optimum(market: Market) -> None:
    graph, result = screened(market)
    quoter = ExactQuoter(market.engine)
    assert len(result.cycles) == 2  # one cycle, both directions
    for c, x, s in zip(
        result.cycles.tolist(), result.amount_in.tolist(), result.profit.tolist(), strict=True
    ):
        path = graph.path(c)
        hops = v2_hops(market, path)
        # no exact profit at or beyond the real break-even input x0 = (K - M) / N
        limit = int(break_even(hops)) + 2
        assume(limit <= EXHAUSTIVE_LIMIT)
        best, best_x = exhaustive_best(hops, limit)
        assert quoter.cycle_out(path, best_x) - best_x == best  # the int64 model is exact
        if x == 0:
            assert s == 0
            assert best <= 0  # the screen saw no profit, and none exists
            continue
        at_screen = quoter.cycle_out(path, int(x)) - int(x)
        slack = 2 + downstream_slack(hops)
        assert at_screen >= best - FLOAT_REL * abs(best) - slack, (best, best_x, at_screen, x)
        assert best <= s * (1 + FLOAT_REL) + FLOAT_REL * x  # real profit bounds exact ones
        guess = max(1, int(x))  # as the recalculator calls it (x may be below one unit)
        searched_in, searched_out = quoter.best_input(path, guess)
        at_guess = quoter.cycle_out(path, guess) - guess
        assert searched_out - searched_in >= at_guess  # the search never loses its guess
        assert searched_out - searched_in >= best - FLOAT_REL * abs(best) - slack


# -- (b) V3 hops: the virtual-reserve form is exact inside the current range ------------
def unit_value_slack(market: Market, graph: CycleGraph, c: int) -> float:
    """Start-token value of the rounding the exact hops may lose (see module docstring)."""
    start = graph.start_token(c)
    tokens = graph.tokens(c)
    slack = 0.0
    for h, (pool, _) in enumerate(graph.path(c)):
        value_out = float(market.price[tokens[h + 1]] / market.price[start])
        if market.pools[pool].kind is PoolKind.V3:
            value_in = float(market.price[tokens[h]] / market.price[start])
            slack += 8 * 2 * (value_in + value_out)
        else:
            slack += 2 * value_out
    return slack


def assert_stays_in_range(
    market: Market, quoter: ExactQuoter, path: list[tuple[int, bool]], amount_in: int
) -> None:
    """No V3 hop of the screened input crosses an initialized tick."""
    amount = amount_in
    for pool, zero_for_one in path:
        spec = market.pools[pool]
        if spec.kind is PoolKind.V3 and amount > 0:
            sqrt, liquidity, tick = market.engine.table.slot0(pool)
            state = V3SwapState(
                sqrt_price_x96=sqrt,
                tick=tick,
                liquidity=liquidity,
                fee_pips=spec.fee,
                tick_spacing=spec.tick_spacing,
            )
            result = swap(state, quoter.tick_table(pool), zero_for_one, amount)
            assert result.ticks_crossed == 0, (pool, amount, result)
            assert result.liquidity == liquidity
        amount = quoter.hop_out(pool, zero_for_one, amount) if amount > 0 else 0


@settings(max_examples=150, deadline=None)
@given(market=markets())
def test_screen_never_promises_what_exact_v3_math_refutes(market: Market) -> None:
    graph, result = screened(market)
    quoter = ExactQuoter(market.engine)
    found = 0
    for c, x, s in zip(
        result.cycles.tolist(), result.amount_in.tolist(), result.profit.tolist(), strict=True
    ):
        if x < 1:
            continue
        path = graph.path(c)
        found += 1
        amount_in = int(x)
        assert_stays_in_range(market, quoter, path, amount_in)
        exact = quoter.cycle_out(path, amount_in) - amount_in
        tolerance = FLOAT_REL * (s + x) + unit_value_slack(market, graph, c)
        assert exact >= s - tolerance, (graph.tokens(c), path, x, s, exact)
    # (A skewed pool whose price sits on its range's boundary may screen no profit: the
    # cap is 0 there, the next range's liquidity being unknown to the closed form.)
    event("profitable cycles screened" if found else "no profitable cycle screened")


# -- (c) the recalculator screens exactly the cycles containing a changed pool ----------
def brute_force_cycles(
    pools: dict[int, tuple[bytes, bytes]], bases: Iterable[bytes], max_hops: int
) -> set[CycleKey]:
    """Every closed walk base → … → base over distinct pools through distinct tokens."""
    found: set[CycleKey] = set()
    for base in bases:
        for hops in range(2, max_hops + 1):
            for chosen in itertools.permutations(pools, hops):
                token, visited, path = base, [base], []
                for pool in chosen:
                    t0, t1 = pools[pool]
                    if token not in (t0, t1):
                        break
                    path.append((pool, token == t0))
                    token = t1 if token == t0 else t0
                    visited.append(token)
                else:
                    if token == base and len(set(visited[:-1])) == hops:
                        found.add((base, tuple(path)))
    return found


def live_cycles(graph: CycleGraph, ids: npt.NDArray[np.int64] | None = None) -> set[CycleKey]:
    if ids is None:
        ids = np.flatnonzero(graph.alive[: graph.count]).astype(np.int64)
    return {(graph.start_token(c), tuple(graph.path(c))) for c in ids.tolist()}


def screened_total(recalculator: PathRecalculator) -> float:
    value = recalculator.engine.metrics.registry.get_sample_value(
        "arena_path_cycles_screened_total"
    )
    return value or 0.0


@settings(max_examples=60, deadline=None)
@given(market=markets(others=(2, 3), extra_pools=(3, 6)), data=st.data())
def test_recalculator_screens_exactly_the_cycles_of_changed_pools(
    market: Market, data: st.DataObject
) -> None:
    recalculator = PathRecalculator(market.engine, PathfinderConfig())
    recalculator.on_settled(market.settled(1))  # the initial state: everything changed
    pools = {s.index: (s.token0.address, s.token1.address) for s in market.pools}
    everything = brute_force_cycles(pools, [market.weth], 3)
    for block in range(2, 5):
        changed = data.draw(st.frozensets(st.sampled_from(sorted(pools))), label="changed")
        before = screened_total(recalculator)
        recalculator.on_settled(market.settled(block, changed=changed))
        expected = {key for key in everything if any(p in changed for p, _ in key[1])}
        assert screened_total(recalculator) - before == len(expected)
        assert live_cycles(recalculator.graph, recalculator.graph.cycles_of(changed)) == expected


# -- (d) the cycle graph against brute force, incrementally and rebuilt -----------------
TOKENS = [bytes([i]) * 20 for i in range(1, 7)]


@st.composite
def token_graphs(draw: st.DrawFn) -> tuple[list[bytes], list[tuple[int, bytes, bytes]], int]:
    bases = draw(st.lists(st.sampled_from(TOKENS[:4]), min_size=1, max_size=2, unique=True))
    n_tokens = draw(st.integers(2, len(TOKENS)))
    pair = st.lists(st.sampled_from(TOKENS[:n_tokens]), min_size=2, max_size=2, unique=True)
    pairs = draw(st.lists(pair, min_size=1, max_size=9))
    return bases, [(i, a, b) for i, (a, b) in enumerate(pairs)], draw(st.sampled_from([2, 3]))


@settings(max_examples=200, deadline=None)
@given(spec=token_graphs(), data=st.data())
def test_cycle_graph_matches_brute_force_incrementally_and_rebuilt(
    spec: tuple[list[bytes], list[tuple[int, bytes, bytes]], int], data: st.DataObject
) -> None:
    bases, pools, max_hops = spec
    graph = CycleGraph(bases, max_hops=max_hops)
    present: dict[int, tuple[bytes, bytes]] = {}
    one_op = st.tuples(st.sampled_from(["add", "remove", "compact"]), st.sampled_from(pools))
    ops = data.draw(st.lists(one_op, max_size=25), label="ops")
    for op, (index, a, b) in [*ops, *(("add", p) for p in pools)]:
        if op == "add":
            graph.add_pool(index, a, b)
            present[index] = (a, b)
        elif op == "remove":
            graph.remove_pool(index)
            present.pop(index, None)
        else:
            graph.compact()
        expected = brute_force_cycles(present, bases, max_hops)
        assert live_cycles(graph) == expected
    assert graph.live_count() == len(expected)

    rebuilt = CycleGraph(bases, max_hops=max_hops)
    rebuilt.add_pools((i, *tokens) for i, tokens in present.items())
    assert live_cycles(rebuilt) == live_cycles(graph)

    for start, path in expected:  # both directions of every cycle
        assert (start, tuple((p, not z) for p, z in reversed(path))) in expected
    for index in present:  # the incidence index, CSR and pending parts alike
        containing = {key for key in expected if any(p == index for p, _ in key[1])}
        assert live_cycles(graph, graph.cycles_of([index])) == containing
    for c in np.flatnonzero(graph.alive[: graph.count]).tolist():
        tokens = graph.tokens(c)
        assert tokens[0] == tokens[-1] == graph.start_token(c)
