"""The golden-section best-input search the bounded verification replaced, as a reference.

It quotes a cycle about 50 times: a bracket of ±50 % around the guess, moved up by
doubling while the profit still rises at its upper edge, then 20 golden sections.
"""

from __future__ import annotations

from typing import Final

from pathfinder.bounded_search import PricedCycle

GOLDEN: Final = 0.6180339887498949
WIDEN_LIMIT: Final = 40


def golden_section_input(cycle: PricedCycle, guess: int, rounds: int = 20) -> int:
    """The input with the best exact profit the search visits (the guess included)."""
    profit = cycle.profit
    a = max(1, int(guess * 0.5))
    b = max(a + 2, int(guess * 1.5))
    for _ in range(WIDEN_LIMIT):
        if profit(b) <= profit(b - max(1, b >> 12)):
            break
        a, b = b, 2 * b
    c = b - int((b - a) * GOLDEN)
    d = a + int((b - a) * GOLDEN)
    for _ in range(rounds):
        if b - a <= 3:
            break
        if profit(c) >= profit(d):
            b = d
        else:
            a = c
        c = b - int((b - a) * GOLDEN)
        d = a + int((b - a) * GOLDEN)
    final = range(a, b + 1) if b - a <= 3 else (a, c, d, b)
    return max((*final, guess), key=profit)
