"""A Curve StableSwap-NG pool as one hop of a cycle: its exact read and its screen row.

A Curve hop is one edge of the cycle graph: the pool's whitelisted pair (token0, token1)
or another pair of its coins (`coin_pair_edges`); it trades the coins at those tokens'
positions in the pool's hydrated coin list (`coin_pair`).
Exact quotes run the pool's own integer math (`curve_stableswap`) on the arena's state,
with A at the next block's time: the newest block's timestamp plus `SECONDS_PER_BLOCK`.

The screen needs each hop as a Möbius map `K·x / (M + N·x)` that never promises more
than the pool pays (`screen_row`): M = 1, K = the average rate of a small probe input
(at most the marginal rate at zero, the curve being concave), and the least N that
keeps the map at or below the exact output at the cap `x1` (a share of the pool's
balance of the coin in) and at inputs a factor SAMPLE_STEP apart below it. Between
samples the curve's bend is smooth; the property tests check the map against the exact
math at random inputs; a relative margin covers the pool's integer rounding (beyond
dust, see ROUNDING_UNITS). Inputs above `x1` are not screened (the cap).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from arena.coin_pools import CoinPoolState, CurveParams
from pathfinder.curve_stableswap import CurveRevertError, StableSwapPool, get_dy

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
# amplifies) is a few units of the coin bought; the margin covers it once an output
# reaches ROUNDING_UNITS / ROUNDING_MARGIN units. Below that (dust: no cycle is worth
# gas there) the map may promise a few units more than the pool pays.
ROUNDING_MARGIN: Final = 1e-5
ROUNDING_UNITS: Final = 64


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


class ScreenRow(NamedTuple):
    k: float
    m: float
    n: float
    cap: float


def screen_row(read: CurveRead, zero_for_one: bool) -> ScreenRow | None:
    """The hop's conservative Möbius map and cap; None when the pool cannot be screened
    (an exchange at the probe or the cap reverts or pays nothing)."""
    i, _ = directed(read, zero_for_one)
    balance = read.pool.balances[i]
    x1 = int(balance * CAP_SHARE)
    probe = max(1, int(balance * PROBE_SHARE))
    if x1 <= probe:
        return None
    dy_probe = curve_out(read, zero_for_one, probe)
    if dy_probe <= 0:
        return None
    k = dy_probe / probe
    # K/(1 + N·x) ≤ dy(x)/x at every sample x (the cap and its halvings down to the
    # probe): N ≥ (K·x/dy(x) − 1)/x there; the largest such N holds at all of them.
    n = 0.0
    x = x1
    while x > probe:
        dy = curve_out(read, zero_for_one, x)
        if dy <= 0:
            return None
        n = max(n, (k * x / dy - 1.0) / x)
        x //= SAMPLE_STEP
    return ScreenRow(k * (1.0 - ROUNDING_MARGIN), 1.0, n, float(x1))


def virtual_reserves(row: ScreenRow) -> tuple[int, int]:
    """The screen row as constant-product reserves (in, out) with no fee: the
    real-valued start of the exact search (`optimum_walk`)."""
    # linear up to the cap (N = 0): a constant product far deeper than the cap
    reserve_in = 1.0 / row.n if row.n > 0.0 else row.cap * 1e6
    return max(1, round(reserve_in)), max(1, round(row.k * reserve_in))
