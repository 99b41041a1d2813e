"""Bounded exact verification against the golden-section search it replaced.

Tolerance, and why: every exact hop rounds in the pool's favour, so no exact profit of a
cycle exceeds the real-valued profit at the real optimum, which `walk_optimum` locates.
The exact profit at the (rounded) real optimum trails that by at most the rounding the
exact hops may lose there: `Optimum.slack`, i.e. per swap step 1 unit of the hop's output
and 3 of its input (amountIn and the fee round up, the input less fee rounds down), each
unit valued at the later hops' marginal rates at the start, plus 1e-12 relative float64
error per walked segment and per hop. So the bounded result may trail the golden
section's (or any other search's) by at most that slack, and by as much again where the
screened guess stands in for a real optimum it differs from by less than the rounding
could tell (within the slack over the cycle's steepest marginal rate). It is usually
ahead of it, the backward trim taking back the intermediate tokens' rounding.
"""

from __future__ import annotations

import math

from hypothesis import event, given, settings
from hypothesis import strategies as st

from pathfinder.bounded_search import (
    EVALUATION_CAP,
    HopQuotes,
    PricedCycle,
    bracketed_search,
    settle,
)
from pathfinder.exact_quote import ExactQuoter
from pathfinder.optimum_walk import Optimum, walk_optimum
from tests.pathfinder.golden_section import golden_section_input
from tests.pathfinder.strategies import SMALL, Market, markets, v2_cycles
from tests.pathfinder.test_best_input import _market as stacked_bands
from tests.pathfinder.test_screen_properties import screened


def compare_with_golden_section(market: Market) -> None:
    graph, result = screened(market)
    quoter = ExactQuoter(market.engine)
    for c, x in zip(result.cycles.tolist(), result.amount_in.tolist(), strict=True):
        if x <= 0:
            continue
        path = graph.path(c)
        guess = max(1, int(x))
        verified = quoter.verify(path, guess)
        optimum = walk_optimum([quoter.hop_curve(i, z) for i, z in path])
        reference = quoter.priced_cycle(path)
        golden = reference.profit(golden_section_input(reference, guess))
        found = verified.amount_out - verified.amount_in
        assert verified.amount_out == quoter.cycle_out(path, verified.amount_in)
        assert verified.evaluations <= EVALUATION_CAP
        assert verified.modelled, (path, guess, optimum)
        assert found >= reference.profit(guess)
        assert found >= golden - 2 * optimum.slack, (found, golden, optimum)
        event("ahead of golden section" if found > golden else "level or behind, in slack")


@settings(max_examples=120, deadline=None)
@given(market=markets())
def test_bounded_search_keeps_up_with_golden_sections_on_v2_v3_cycles(market: Market) -> None:
    compare_with_golden_section(market)


@settings(max_examples=60, deadline=None)
@given(market=st.sampled_from([2, 3]).flatmap(lambda hops: v2_cycles(hops, scale=SMALL)))
def test_bounded_search_keeps_up_with_golden_sections_on_small_v2_cycles(market: Market) -> None:
    compare_with_golden_section(market)


def concave_cycle(peak: int) -> PricedCycle:
    """One hop giving back x + ⌊x·(2·peak − x) / (4·peak)⌋: the profit peaks at `peak`."""

    def out(amount_in: int) -> int:
        return amount_in + max(0, amount_in * (2 * peak - amount_in) // (4 * peak))

    def need(amount_out: int) -> int:
        return 0

    return PricedCycle([HopQuotes(out, need)])


@settings(max_examples=100, deadline=None)
@given(
    peak=st.integers(min_value=10, max_value=10**24),
    guess_share=st.floats(min_value=0.01, max_value=3.0),
    claimed_share=st.floats(min_value=0.5, max_value=5.0),
)
def test_a_misleading_model_costs_at_most_the_cap_and_never_the_guess(
    peak: int, guess_share: float, claimed_share: float
) -> None:
    cycle = concave_cycle(peak)
    guess = max(1, int(peak * guess_share))
    # A real optimum elsewhere and a profit the exact quotes will not confirm.
    claimed = Optimum(peak * claimed_share, float(peak) * 7.0, 0.0, 1)
    verified = settle(cycle, guess, claimed)
    assert verified.evaluations <= EVALUATION_CAP
    assert not verified.modelled
    assert verified.amount_out - verified.amount_in >= cycle.profit(guess)


def test_the_bracketed_search_climbs_towards_a_distant_peak() -> None:
    cycle = concave_cycle(10**18)
    start = 10**17
    bracketed_search(cycle, start, EVALUATION_CAP)
    assert cycle.evaluations <= EVALUATION_CAP
    assert cycle.profit(cycle.best()) > cycle.profit(start)


def test_a_degenerate_real_optimum_falls_back_to_the_search() -> None:
    cycle = concave_cycle(10**6)
    for amount in (math.inf, math.nan, -1.0):
        verified = settle(concave_cycle(10**6), 10**5, Optimum(amount, math.nan, 0.0, 1))
        assert not verified.modelled
        assert verified.evaluations <= EVALUATION_CAP
        assert verified.amount_out - verified.amount_in >= cycle.profit(10**5)


@settings(max_examples=20, deadline=None)
@given(
    skew_bps=st.integers(min_value=60, max_value=400),
    band=st.sampled_from([10, 20, 50]),
    liquidity=st.integers(min_value=10**15, max_value=10**18),
)
def test_optima_ranges_away_cost_no_more_quotes(skew_bps: int, band: int, liquidity: int) -> None:
    engine, path = stacked_bands(skew_bps, band, liquidity)
    quoter = ExactQuoter(engine)
    verified = quoter.verify(path, 10**15)  # a guess inside the first range
    optimum = walk_optimum([quoter.hop_curve(i, z) for i, z in path])
    assert verified.modelled
    assert verified.evaluations <= 4  # guess, optimum, trim backwards and forwards
    event(f"segments walked: {optimum.segments if optimum.segments < 10 else '10 or more'}")
