"""A Curve StableSwap-NG pool as one hop of a cycle: its exact read and its screen row.

A Curve hop is one edge of the cycle graph: the pool's whitelisted pair (token0, token1)
or another pair of its coins (`coin_pair_edges`); it trades the coins at those tokens'
positions in the pool's hydrated coin list (`coin_pair`).
Exact quotes run the pool's own integer math (`curve_stableswap`) on the arena's state,
with A at the next block's time: the newest block's timestamp plus `SECONDS_PER_BLOCK`.

The screen needs each hop as a Möbius map `K·x / (M + N·x)` that never promises more
than the pool pays (`screen_row`): M = 1, K = the average rate of a small probe input
(at most the marginal rate at zero, the curve being concave), and the least N that
keeps the map at or below the chords between the exact outputs at the probe, the cap
`x1` (a share of the pool's balance of the coin in) and inputs a factor SAMPLE_STEP
apart below it. The curve being concave lies on or above each chord, so the map is
under the curve everywhere up to the cap, not only at the samples (an imbalanced pool
bends sharply between two samples); the property tests check the map against the exact
math at random inputs; a relative margin covers the pool's integer rounding (beyond
dust, see ROUNDING_UNITS). Inputs above `x1` are not screened (the cap).

The rounding is not always a few units: get_D stops within one unit of D, and in an
imbalanced pool one unit of D moves the balance get_y solves for by hundreds of units of
the abundant coin. That error is an offset the pool pays short of its smooth curve at
every input (`rounding_units` measures it: get_y at the unchanged balances is not the
pool's balance), so the margin grows until it covers the offset from the dust line on.
"""

from __future__ import annotations

import itertools
import math
from typing import Final, NamedTuple

from arena.coin_pools import CoinPoolState, CurveParams
from pathfinder.curve_stableswap import (
    PRECISION,
    CurveRevertError,
    StableSwapPool,
    amp_at,
    get_d,
    get_dy,
    get_y,
    xp_of,
)

SECONDS_PER_BLOCK: Final = 12
# The screen's cap: this share of the pool's balance of the coin sold.
CAP_SHARE: Final = 0.1
# The probe input giving the screen's first rate: this share of the same balance.
PROBE_SHARE: Final = 1e-6
# The screen's map is fitted below the exact output at the cap, the cap / SAMPLE_STEP,
# ... down to the probe.
SAMPLE_STEP: Final = 4
# Relative margin under the pool's integer outputs. Their rounding (the pool's `- 1`,
# the floors, and get_D/get_y stopping within one unit, which an imbalanced pool
# amplifies) is a few units of the coin bought in a balanced pool; the margin covers it
# once an output reaches ROUNDING_UNITS / ROUNDING_MARGIN units (the dust line). Where
# the pool's measured rounding (`rounding_units`) is larger, the margin grows by the
# same factor, so it still covers it from the dust line on. Below that line (no cycle
# is worth gas there) the map may promise up to that rounding more than the pool pays.
ROUNDING_MARGIN: Final = 1e-5
ROUNDING_UNITS: Final = 64
# Units of the coin bought added to the measured offset (`rounding_units`): the pool's
# `- 1`, get_y stopping within one unit at the input and at the unchanged balance, the
# fee's and the rate's floors.
ROUNDING_SLACK: Final = 4


class CurveRead(NamedTuple):
    """What a Curve hop's quotes read: the pool's math inputs, the coins sold and
    bought for token0 → token1, and the timestamp A is taken at."""

    pool: StableSwapPool
    i: int  # position of the edge's token0 among the pool's coins
    j: int  # position of its token1
    timestamp: int


def stableswap_pool(state: CoinPoolState) -> StableSwapPool | None:
    params = state.params
    if not isinstance(params, CurveParams):
        return None
    return StableSwapPool(
        balances=state.balances,
        rates=params.rates,
        fee=params.fee,
        offpeg_fee_multiplier=params.offpeg_fee_multiplier,
        initial_a=params.initial_a,
        future_a=params.future_a,
        initial_a_time=params.initial_a_time,
        future_a_time=params.future_a_time,
    )


def coin_pair(state: CoinPoolState, token0: bytes, token1: bytes) -> tuple[int, int] | None:
    """The coin positions of the edge's token0 and token1, or None if the pool's coins
    do not hold both."""
    i, j = state.coin_index(token0), state.coin_index(token1)
    if i is None or j is None or i == j:
        return None
    return i, j


def read_curve(state: CoinPoolState, tokens: tuple[bytes, bytes], clock: int) -> CurveRead | None:
    """The read of the edge trading `tokens` (token0, token1) at the block after the one
    at `clock`; None if not quotable."""
    math_pool = stableswap_pool(state)
    pair = coin_pair(state, *tokens)
    if math_pool is None or pair is None:
        return None
    return CurveRead(math_pool, pair[0], pair[1], clock + SECONDS_PER_BLOCK)


def directed(read: CurveRead, zero_for_one: bool) -> tuple[int, int]:
    """(coin sold, coin bought) of the hop in that direction."""
    return (read.i, read.j) if zero_for_one else (read.j, read.i)


def curve_out(read: CurveRead, zero_for_one: bool, amount_in: int) -> int:
    """Exact output of the hop; 0 where the pool would revert."""
    i, j = directed(read, zero_for_one)
    try:
        return get_dy(read.pool, i, j, amount_in, read.timestamp)
    except CurveRevertError:
        return 0


def rounding_units(read: CurveRead, zero_for_one: bool) -> int:
    """How many units of the coin bought the pool's integer math may pay short of its
    smooth curve at this state: the offset of get_y at the unchanged balances (the
    invariant's rounding) plus ROUNDING_SLACK, at least ROUNDING_UNITS."""
    i, j = directed(read, zero_for_one)
    pool = read.pool
    xp = xp_of(pool.balances, pool.rates)
    amp = amp_at(pool, read.timestamp)
    offset = abs(get_y(i, j, xp[i], xp, amp=amp, d=get_d(xp, amp)) - xp[j])
    in_units = -(-offset * PRECISION // pool.rates[j])  # ceil: xp → the coin's units
    return max(ROUNDING_UNITS, 2 * in_units + ROUNDING_SLACK)


class ScreenRow(NamedTuple):
    k: float
    m: float
    n: float
    cap: float


def screen_row(read: CurveRead, zero_for_one: bool) -> ScreenRow | None:
    """The hop's conservative Möbius map and cap; None when the pool cannot be screened
    (an exchange at the probe or the cap reverts or pays nothing, or the pool's rounding
    is as large as the whole dust line)."""
    i, _ = directed(read, zero_for_one)
    balance = read.pool.balances[i]
    x1 = int(balance * CAP_SHARE)
    probe = max(1, int(balance * PROBE_SHARE))
    if x1 <= probe:
        return None
    dy_probe = curve_out(read, zero_for_one, probe)
    if dy_probe <= 0:
        return None
    try:
        # the relative margin that covers the rounding once an output reaches the dust
        # line ROUNDING_UNITS / ROUNDING_MARGIN
        margin = ROUNDING_MARGIN * rounding_units(read, zero_for_one) / ROUNDING_UNITS
    except CurveRevertError:
        return None
    if margin >= 1.0:
        return None
    k = dy_probe / probe
    samples = [(probe, dy_probe)]
    x = x1
    while x > probe:
        dy = curve_out(read, zero_for_one, x)
        if dy <= 0:
            return None
        samples.append((x, dy))
        x //= SAMPLE_STEP
    samples.sort()
    # The pool's curve is concave: between two samples it lies on or above their chord
    # (and from 0 to the probe on or above K·x). The map is held under every chord.
    n = max(_least_n_under_chord(k, a, b) for a, b in itertools.pairwise(samples))
    return ScreenRow(k * (1.0 - margin), 1.0, n, float(x1))


def _least_n_under_chord(k: float, a: tuple[int, int], b: tuple[int, int]) -> float:
    """A least N ≥ 0 with K·x/(1 + N·x) under the concave curve through a and b
    ((input, output), a's input below b's) at every x between them: the lesser of the N
    that holds the map under the chord from a to b and the N that holds it under the
    chord from the origin to b (on which the curve also lies, from 0 to b)."""
    (xa, ya), (xb, yb) = a, b
    # under the origin's chord: K/(1 + N·x) ≤ yb/xb, tightest at x = xa
    from_origin = max(0.0, (k * xb / yb - 1.0) / xa)
    slope = (yb - ya) / (xb - xa)
    intercept = ya - slope * xa  # the chord is intercept + slope·x
    if slope <= 0.0 or intercept <= 0.0:
        return from_origin  # not concave at this scale (the pool's rounding)

    def needed(x: float) -> float:  # N ≥ (K·x − chord(x)) / (x·chord(x))
        chord = intercept + slope * x
        return (k * x - chord) / (x * chord)

    candidates = [float(xa), float(xb)]
    if k > slope:
        # where (K·x − chord)/(x·chord) is largest: the root of its derivative
        peak = intercept * (slope + math.sqrt(slope * k)) / ((k - slope) * slope)
        if xa < peak < xb:
            candidates.append(peak)
    return min(from_origin, max(0.0, *(needed(x) for x in candidates)))


def virtual_reserves(row: ScreenRow) -> tuple[int, int]:
    """The screen row as constant-product reserves (in, out) with no fee: the
    real-valued start of the exact search (`optimum_walk`)."""
    # linear up to the cap (N = 0): a constant product far deeper than the cap
    reserve_in = 1.0 / row.n if row.n > 0.0 else row.cap * 1e6
    return max(1, round(reserve_in)), max(1, round(row.k * reserve_in))
