"""Exact integer quotes along a cycle over the arena's current state.

V2 hops use `getAmountOut` with the pool's fee; V3/V4 hops run the full swap loop with
tick crossings over a `TickTable` rebuilt only when the pool's tick map changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, final

from arena.engine import ArenaEngine
from arena.registry import PoolKind
from pathfinder.errors import PathfinderError
from pathfinder.hop_params import DEFAULT_V2_FEE
from pathfinder.tick_table import TickTable
from pathfinder.v2_math import get_amount_out
from pathfinder.v3_swap import V3SwapState, quote_exact_input

GOLDEN: Final = 0.6180339887498949
WIDEN_LIMIT: Final = 40  # 2^40 x the guess: beyond any pool's depth


@final
class ExactQuoter:
    def __init__(self, engine: ArenaEngine) -> None:
        self.engine = engine
        self._tables: dict[int, tuple[int, TickTable]] = {}
        self.quotes = 0

    def tick_table(self, index: int) -> TickTable:
        version = self.engine.ticks.version.get(index, 0)
        cached = self._tables.get(index)
        if cached is None or cached[0] != version:
            spacing = self.engine.registry.pools[index].tick_spacing or 1
            table = TickTable.from_net_gross(
                {t: (v[0], v[1]) for t, v in self.engine.ticks.ticks(index).items()}, spacing
            )
            cached = self._tables[index] = (version, table)
        return cached[1]

    def hop_out(self, index: int, zero_for_one: bool, amount_in: int) -> int:
        """Exact output of one hop, 0 where the pool cannot fill the input."""
        self.quotes += 1
        engine = self.engine
        pool = engine.registry.pools[index]
        try:
            if engine.registry.kind_of(index) is PoolKind.V2:
                r0, r1 = engine.table.reserves(index)
                fee_bps = (pool.fee if pool.fee is not None else DEFAULT_V2_FEE) // 100
                if zero_for_one:
                    return get_amount_out(amount_in, r0, r1, fee_bps)
                return get_amount_out(amount_in, r1, r0, fee_bps)
            sqrt, liquidity, tick = engine.table.slot0(index)
            state = V3SwapState(
                sqrt_price_x96=sqrt,
                tick=tick,
                liquidity=liquidity,
                fee_pips=pool.fee or 0,
                tick_spacing=pool.tick_spacing or 1,
            )
            return quote_exact_input(state, self.tick_table(index), zero_for_one, amount_in)
        except PathfinderError:
            return 0

    def cycle_out(self, path: Sequence[tuple[int, bool]], amount_in: int) -> int:
        amount = amount_in
        for index, zero_for_one in path:
            if amount <= 0:
                return 0
            amount = self.hop_out(index, zero_for_one, amount)
        return amount

    def best_input(
        self, path: Sequence[tuple[int, bool]], guess: int, *, span: float = 0.5, rounds: int = 20
    ) -> tuple[int, int]:
        """(amount_in, amount_out) maximizing out - in near `guess`: a golden-section
        search over integers in [guess·(1-span), guess·(1+span)] (moved up while the
        profit still rises at its edge), profit being unimodal for concave swap curves."""
        lo = max(1, int(guess * (1 - span)))
        hi = max(lo + 2, int(guess * (1 + span)))
        cache: dict[int, int] = {}

        def profit(x: int) -> int:
            if x not in cache:
                cache[x] = self.cycle_out(path, x) - x
            return cache[x]

        a, b = lo, hi
        # A capped screen stops at a tick range's edge; the exact optimum can lie several
        # ranges further. While the profit still rises at the bracket's upper edge, the
        # optimum is beyond it: move the bracket up (doubling, at most WIDEN_LIMIT times).
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
        # The floors make profit only nearly unimodal: the bracket can drift off the
        # guess, so the guess stays a candidate (never return less than it gives).
        final = range(a, b + 1) if b - a <= 3 else (a, c, d, b)
        best = max((*final, guess), key=profit)
        return best, profit(best) + best
