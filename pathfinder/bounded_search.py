"""A cycle's best exact input from a bounded number of exact cycle quotes.

`settle` receives the real-valued optimum over the exact state (`optimum_walk`) and:
1. quotes the screened guess (the answer is never worse than it);
2. quotes the optimum, rounded to an integer (or takes the guess for it where the two
   differ by less than the rounding could tell); where the exact profit there agrees
   with the real one up to the rounding the exact math may lose (`Optimum.slack`), the
   real model described the pools and the quoted input is the exact optimum up to twice
   that slack; otherwise a bracketed search spends what is left of the budget;
3. trims the rounding where it can matter (the slack above a billionth of the profit,
   as with 6- or 8-decimals tokens between hops): walking the best input's hop amounts
   backwards, each hop is asked (exact output) for the least input that still yields
   what the next hop consumed, and the trimmed input is quoted forwards. Exact outputs
   are floors, so an input may carry up to one unit of an intermediate token's worth of
   waste; this gives it back.
At most `EVALUATION_CAP` cycle quotes are spent (a backward walk counts as one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple, final

from pathfinder.optimum_walk import Optimum

Path = Sequence[tuple[int, bool]]
EVALUATION_CAP: Final = 12
# Quotes kept back from the bracketed search for the trim (a backward walk, a forward).
TRIM_QUOTES: Final = 2
# Rounding below this share of the profit is not worth the trim's quotes.
TRIM_WORTH: Final = 1e-9
GOLDEN: Final = 0.6180339887498949


class HopQuotes(NamedTuple):
    out: Callable[[int], int]  # exact output for an input; 0 when it cannot be filled
    need: Callable[[int], int]  # exact input for an output; 0 when it cannot be had


class Verified(NamedTuple):
    amount_in: int
    amount_out: int
    evaluations: int  # exact cycle quotes spent
    modelled: bool  # the exact profit agreed with the real-valued optimum


@final
class PricedCycle:
    """Exact quotes of one cycle, remembered per input with the hops' amounts."""

    def __init__(self, hops: Sequence[HopQuotes]) -> None:
        self.hops = hops
        self.amounts: dict[int, list[int]] = {}  # input -> every hop's input, then out
        self.backward = 0

    @property
    def evaluations(self) -> int:
        return len(self.amounts) + self.backward

    def out(self, amount_in: int) -> int:
        known = self.amounts.get(amount_in)
        if known is not None:
            return known[-1]
        amounts = [amount_in]
        amount = amount_in
        for hop in self.hops:
            amount = hop.out(amount) if amount > 0 else 0
            amounts.append(amount)
        self.amounts[amount_in] = amounts
        return amount

    def profit(self, amount_in: int) -> int:
        return self.out(amount_in) - amount_in

    def best(self) -> int:
        """The quoted input with the highest profit (the smallest among equals)."""
        return max(sorted(self.amounts), key=self.profit)

    def least_input_for(self, amount_in: int) -> int:
        """The least input whose hops still feed the next ones what `amount_in`'s did,
        as exact-output quotes see it (0 when a hop cannot say)."""
        self.backward += 1
        amounts = self.amounts[amount_in]
        wanted = amounts[-1]
        for h in range(len(self.hops) - 1, -1, -1):
            least = self.hops[h].need(wanted)
            if least <= 0:
                return 0
            wanted = min(least, amounts[h])
        return wanted


def settle(cycle: PricedCycle, guess: int, optimum: Optimum) -> Verified:
    cycle.profit(guess)
    if 1.0 <= optimum.amount_in < math.inf:
        # The guess stands for the optimum where the real profit cannot tell them apart
        # beyond the rounding slack.
        x = guess
        if off_optimum(optimum, guess) > optimum.slack:
            x = round(optimum.amount_in)
        tolerance = optimum.slack + off_optimum(optimum, x)
        modelled = abs(cycle.profit(x) - optimum.profit) <= tolerance
    else:  # no profit in the real model: the exact one must not find any either
        modelled = cycle.profit(guess) <= optimum.slack
    if not modelled:
        bracketed_search(cycle, cycle.best(), EVALUATION_CAP - TRIM_QUOTES)
    best = cycle.best()
    profit = cycle.profit(best)
    if profit > 0 and (not modelled or optimum.slack > TRIM_WORTH * profit):
        trimmed = cycle.least_input_for(best)
        if 0 < trimmed < best:
            cycle.profit(trimmed)
        best = cycle.best()
    return Verified(best, cycle.out(best), cycle.evaluations, modelled)


def off_optimum(optimum: Optimum, x: int) -> float:
    """How much less real profit `x` may make than the real optimum."""
    moved = abs(optimum.amount_in - x)
    low, high = optimum.segment
    if low <= x <= high:  # an interior optimum: the marginal rate is 1 there
        return optimum.curvature * moved * moved
    # Elsewhere the marginal rate is at most its value at no input.
    return moved * (optimum.steepest + 1.0)


def bracketed_search(cycle: PricedCycle, start: int, cap: int) -> None:
    """Look for a better input near `start` until `cap` quotes are spent: bracket the
    optimum by doubling steps from 1/64 of `start`, then narrow it by golden sections."""
    step = max(1, start >> 6)
    here, direction = start, 0
    for sign in (1, -1):
        if cycle.evaluations >= cap or here + sign * step < 1:
            continue
        if cycle.profit(here + sign * step) > cycle.profit(here):
            direction = sign
            break
    if direction == 0:
        _golden_sections(cycle, max(1, here - step), here, here + step, cap)
        return
    behind, here = here, here + direction * step
    while cycle.evaluations < cap:
        step *= 2
        ahead = max(1, here + direction * step)
        if ahead == here or cycle.profit(ahead) <= cycle.profit(here):
            low, high = sorted((behind, ahead))
            _golden_sections(cycle, low, here, high, cap)
            return
        behind, here = here, ahead


def _golden_sections(cycle: PricedCycle, low: int, middle: int, high: int, cap: int) -> None:
    """Narrow [low, high] around its best known inner point `middle`."""
    while cycle.evaluations < cap and high - low > 2:
        right = high - middle >= middle - low
        gap = high - middle if right else middle - low
        probe = middle + (1 if right else -1) * max(1, int(gap * (1 - GOLDEN)))
        if not low < probe < high:
            return
        if cycle.profit(probe) > cycle.profit(middle):
            low, middle, high = (middle, probe, high) if right else (low, probe, middle)
        elif right:
            high = probe
        else:
            low = probe
