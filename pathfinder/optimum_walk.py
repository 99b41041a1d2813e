"""The real-valued optimum of a cycle over exact pool state, one liquidity segment at a time.

A hop that holds virtual reserves `x` (input token) and `y` (output token) and keeps a
fraction γ of its input maps extra input `w` to extra output `r·w / (1 + n·w)`, with the
marginal rate `r = γ·y/x` and `n = γ/x`; after `w` it holds `x + γ·w` and `x·y / (x + γ·w)`,
and the same form continues from there. A V2 pair is that everywhere (its reserves, γ
its kept fee fraction); a V3/V4 pool is that between two initialized ticks (`x = L/√P`,
`y = L·√P` for token0 in; `x = L·√P`, `y = L/√P` for token1 in), and at the next tick its
liquidity changes and the form starts again from the tick's price.

A cycle is then piecewise a composition of such maps: `(r₁, n₁) ∘ (r₂, n₂) = (r₁·r₂,
n₁ + n₂·r₁)`, whose profit `f(δ) − δ` peaks at `δ = (√r − 1) / n`. `walk_optimum` starts at
the pools' current state (where that peak is the screen's closed form), and while the
peak lies beyond the input at which some hop reaches its next initialized tick, moves
every hop up to that input, crosses the tick and composes again. Profit is concave in
the input (each hop's marginal rate only falls as it fills), so the first segment whose
peak lies inside it holds the optimum. Float64 throughout: this locates the optimum; the
exact integer quotes decide what is emitted.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple, final

from pathfinder.tick_math import MAX_TICK, MIN_TICK, get_sqrt_ratio_at_tick

Q96: Final = float(1 << 96)
# Segments (tick crossings over all hops) walked before settling for the last boundary.
MAX_SEGMENTS: Final = 256
# A hop this close (relative) to its next tick after a move crosses it as well.
SAME_BOUNDARY: Final = 1e-12
# Where a pool's liquidity ends (no tick left to cross), an exact input a hair beyond the
# end cannot be filled at all: an optimum there stays this far (relative to the hop's
# virtual reserve at the end, as the screen's caps do) inside.
WALL_MARGIN: Final = 1e-12
# Relative float64 error allowed per walked segment and per hop in the predicted profit.
FLOAT_REL: Final = 1e-12
# Rounding of one exact swap step, in units of its tokens: amountIn and the fee round up
# and the input less fee rounds down (3 input units), amountOut rounds down (1 output).
STEP_INPUT_UNITS: Final = 3.0
STEP_OUTPUT_UNITS: Final = 1.0
LN_SQRT_TICK: Final = math.log(1.0001) / 2


@final
class TickLadder(NamedTuple):
    """A V3/V4 pool's initialized ticks in ascending order and their liquidity_net."""

    ticks: list[int]
    nets: list[int]
    spacing: int


@final
@dataclass(slots=True)
class HopCurve:
    """The walk's state of one hop: virtual reserves and the next tick it would cross."""

    x: float
    y: float
    gamma: float
    end: float  # x at the next initialized tick; inf when there is none (V2)
    rate0: float  # the marginal rate at the start: the most one input unit ever yields
    ladder: TickLadder | None = None
    zero_for_one: bool = True
    liquidity: int = 0
    position: int = -1  # index into ladder of the next tick to cross
    tick: int = 0  # the tick the hop started in
    last_sqrt: float = 0.0  # √P at the last crossed tick (or the start)
    crossings: int = 0
    exhausted: bool = False  # no tick left to cross: the pool's price range ends

    @classmethod
    def constant_product(cls, reserve_in: int, reserve_out: int, gamma: float) -> HopCurve:
        x, y = float(reserve_in), float(reserve_out)
        return cls(x=x, y=y, gamma=gamma, end=math.inf, rate0=gamma * y / x if x else 0.0)

    @classmethod
    def concentrated(
        cls,
        *,
        sqrt_price_x96: int,
        liquidity: int,
        tick: int,
        gamma: float,
        zero_for_one: bool,
        ladder: TickLadder,
    ) -> HopCurve:
        s = sqrt_price_x96 / Q96
        # Token0 in moves down to the greatest initialized tick at or below the current
        # tick; token1 in moves up to the least one above it (TickBitmap's convention).
        above = bisect_right(ladder.ticks, tick)
        curve = cls(
            x=0.0,
            y=0.0,
            gamma=gamma,
            end=0.0,
            rate0=0.0,
            ladder=ladder,
            zero_for_one=zero_for_one,
            liquidity=liquidity,
            position=above - 1 if zero_for_one else above,
            tick=tick,
            last_sqrt=s,
        )
        curve._enter(s)
        curve.rate0 = gamma * curve.y / curve.x if curve.x else 0.0
        return curve

    def copy(self) -> HopCurve:
        return HopCurve(
            x=self.x,
            y=self.y,
            gamma=self.gamma,
            end=self.end,
            rate0=self.rate0,
            ladder=self.ladder,
            zero_for_one=self.zero_for_one,
            liquidity=self.liquidity,
            position=self.position,
            tick=self.tick,
            last_sqrt=self.last_sqrt,
            crossings=self.crossings,
            exhausted=self.exhausted,
        )

    def _enter(self, s: float) -> None:
        """Virtual reserves at price √P = s with the current liquidity, and the next end."""
        ladder = self.ladder
        if ladder is None:
            return
        liquidity = float(self.liquidity)
        ticks = ladder.ticks
        if 0 <= self.position < len(ticks):
            boundary = ticks[self.position]
        else:
            boundary = MIN_TICK if self.zero_for_one else MAX_TICK
            self.exhausted = True
        s_end = get_sqrt_ratio_at_tick(boundary) / Q96
        if self.zero_for_one:
            self.x, self.y = liquidity / s, liquidity * s
            self.end = max(liquidity / s_end, self.x)
        else:
            self.x, self.y = liquidity * s, liquidity / s
            self.end = max(liquidity * s_end, self.x)

    def cap(self) -> float:
        """Input that takes this hop to its next initialized tick."""
        return (self.end - self.x) / self.gamma

    def advance(self, w: float) -> float:
        """Take `w` more input (within the segment); returns the extra output."""
        added = self.gamma * w
        x = self.x + added
        out = self.y * added / x if x else 0.0
        self.x, self.y = x, self.y - out
        return out

    def cross(self) -> bool:
        """Cross the next initialized tick; False when the price range has ended."""
        ladder = self.ladder
        if ladder is None or self.exhausted:
            return False
        tick = ladder.ticks[self.position]
        net = ladder.nets[self.position]
        self.liquidity += -net if self.zero_for_one else net
        self.position += -1 if self.zero_for_one else 1
        self.crossings += 1
        self.last_sqrt = get_sqrt_ratio_at_tick(tick) / Q96
        # An empty range (or an inconsistent map): nothing to trade until the next tick.
        self.liquidity = max(0, self.liquidity)
        self._enter(self.last_sqrt)
        return True

    def sqrt_price(self) -> float:
        if not self.liquidity or not self.x:
            return self.last_sqrt
        return self.liquidity / self.x if self.zero_for_one else self.x / self.liquidity

    def swap_steps(self) -> float:
        """Upper bound of the exact swap's steps so far: one per crossing, one per
        bitmap word passed, one to finish."""
        ladder = self.ladder
        if ladder is None:
            return 1.0
        start = get_sqrt_ratio_at_tick(self.tick) / Q96
        moved = abs(math.log(self.sqrt_price() / start)) if self.sqrt_price() > 0 else 0.0
        words = moved / LN_SQRT_TICK / (256 * ladder.spacing)
        return self.crossings + words + 2.0


class Optimum(NamedTuple):
    amount_in: float  # the real-valued optimum input (0: no profit at the start)
    profit: float  # the real-valued profit there
    slack: float  # the exact profit there may trail `profit` by up to this much
    segments: int  # segments walked
    steepest: float = 1.0  # the cycle's marginal rate at no input: its largest anywhere
    # The last segment's inputs (where the optimum is interior, i.e. the marginal rate is
    # 1 there) and the largest |f''| inside it; an interior optimum loses at most
    # curvature·Δ² of profit to an input Δ away in the same segment.
    segment: tuple[float, float] = (0.0, 0.0)
    curvature: float = math.inf


def walk_optimum(curves: Sequence[HopCurve]) -> Optimum:
    """The optimum of a cycle whose hops are `curves` (mutated: they end at the optimum)."""
    anchor = 0.0  # cycle input taken so far
    paid = 0.0  # cycle output so far
    segments = 0
    while True:
        segments += 1
        rate, n, bound, binding, reach_rate = _compose(curves)
        step = (math.sqrt(rate) - 1.0) / n if rate > 1.0 and n > 0.0 else 0.0
        if step <= bound or segments > MAX_SEGMENTS:
            interior = 0.0 < step < bound
            step = min(step, bound)
            gained = rate * step / (1.0 + n * step) if step > 0.0 else 0.0
            found = _optimum(curves, anchor + step, paid + gained, segments)
            if not interior:
                return found
            return found._replace(segment=(anchor, anchor + bound), curvature=2.0 * rate * n)
        wall = curves[binding]
        back = WALL_MARGIN * wall.end / wall.gamma / reach_rate
        paid += _advance(curves, bound, binding)
        anchor += bound
        if not _cross_reached(curves, binding):
            # The binding pool has no liquidity beyond: stay inside its last range.
            back = min(back, anchor)
            found = _optimum(curves, anchor - back, paid - back * rate, segments)
            return found._replace(slack=found.slack + back * (rate + 1.0))


def _compose(curves: Sequence[HopCurve]) -> tuple[float, float, float, int, float]:
    """(rate, n) of the composed maps, the largest cycle input keeping every hop inside
    its segment, the hop that sets it and the marginal rate from the cycle to that hop."""
    rate, n = 1.0, 0.0
    bound, binding, reach_rate = math.inf, -1, 1.0
    for h, curve in enumerate(curves):
        cap = curve.cap()
        if h == 0:
            reach = cap
        else:
            denominator = rate - n * cap
            reach = cap / denominator if denominator > 0.0 else math.inf
        if reach < bound:
            bound, binding, reach_rate = reach, h, rate
        if curve.x <= 0.0:
            return rate, n, bound, binding, reach_rate
        hop_rate = curve.gamma * curve.y / curve.x
        n += curve.gamma / curve.x * rate
        rate *= hop_rate
    return rate, n, bound, binding, reach_rate


def _advance(curves: Sequence[HopCurve], amount: float, binding: int) -> float:
    """Move every hop by what `amount` more cycle input sends it; returns the extra out."""
    w = amount
    for h, curve in enumerate(curves):
        if h == binding:
            out = curve.advance(w) if curve.x else 0.0
            curve.x = curve.end  # exactly at its tick, whatever the float rounding did
        else:
            out = curve.advance(w)
        w = out
    return w


def _cross_reached(curves: Sequence[HopCurve], binding: int) -> bool:
    """Cross every tick the move reached; False when the binding hop's range ended."""
    for h, curve in enumerate(curves):
        if math.isinf(curve.end):
            if h == binding:
                return False
            continue
        if h != binding and curve.end - curve.x > SAME_BOUNDARY * curve.end:
            continue
        if not curve.cross():
            if h == binding:
                return False
            continue
        # Empty ranges are passed at no cost.
        while curve.end <= curve.x and curve.cross():
            pass
        if curve.exhausted and curve.end <= curve.x and h == binding:
            return False
    return True


def _optimum(curves: Sequence[HopCurve], amount_in: float, out: float, segments: int) -> Optimum:
    # A unit lost by hop h is worth at most the later hops' rates at the start (each
    # hop's marginal rate only falls), input units lost also its own rate.
    slack, downstream = 0.0, 1.0
    for curve in reversed(curves):
        units = curve.swap_steps() * (
            STEP_OUTPUT_UNITS + STEP_INPUT_UNITS * (curve.rate0 if curve.ladder else 0.0)
        )
        slack += units * downstream
        downstream *= curve.rate0
    slack += FLOAT_REL * (segments + len(curves)) * (amount_in + abs(out))
    return Optimum(amount_in, out - amount_in, slack, segments, downstream)
