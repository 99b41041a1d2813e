"""What the pool contracts guarantee about the values an update carries.

A decoded update can still be wrong — a flipped bit in a recording, a producer bug — and
applying it would serve a wrong price. Each check returns the `Violation` it finds (its
value is the metric label: a fixed vocabulary) or None. The engine marks the pool stale
and counts the violation instead of applying the update.

The tick of a V3/V4 pool is `getTickAtSqrtRatio(sqrtP)`, or one less after a swap that
ended exactly on a tick boundary going down. The check computes the tick from the price
in floating point (relative error about 1e-16, i.e. ~1e-12 of a tick) and accepts every
tick t with est − 1 − δ ≤ t ≤ est + δ. δ is 1e-6 of a tick plus the rounding of the
contract's integer price itself (1 / sqrtP relative; it matters only at the lowest
prices, where sqrtP has some 32 bits): the check never refuses a state the contract can
produce, and admits the "one less" tick only next to a boundary.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Final

MIN_TICK: Final = -887272
MAX_TICK: Final = 887272
MIN_SQRT_RATIO: Final = 4295128739
MAX_SQRT_RATIO: Final = 1461446703485210103287273052203988822378723970342
U112_MAX: Final = (1 << 112) - 1
U128_MAX: Final = (1 << 128) - 1
I128_MIN: Final = -(1 << 127)
I128_MAX: Final = (1 << 127) - 1

_Q96_LOG: Final = 96 * math.log(2)
_HALF_LOG_TICK: Final = math.log(1.0001) / 2
_TOLERANCE: Final = 1e-6  # of a tick
_INTEGER_ROUNDING: Final = 4 / _HALF_LOG_TICK  # ticks × sqrtP: four times a 1-unit rounding


class Violation(StrEnum):
    SQRT_PRICE_RANGE = "sqrt_price_out_of_range"
    TICK_RANGE = "tick_out_of_range"
    TICK_PRICE_MISMATCH = "tick_inconsistent_with_price"
    LIQUIDITY_RANGE = "liquidity_out_of_range"
    RESERVE_RANGE = "reserve_out_of_range"
    TICK_ORDER = "tick_range_invalid"
    LIQUIDITY_DELTA_RANGE = "liquidity_delta_out_of_range"


def tick_estimate(sqrt_price_x96: int) -> float:
    """log base sqrt(1.0001) of sqrtP / 2^96, in floating point."""
    return (math.log(sqrt_price_x96) - _Q96_LOG) / _HALF_LOG_TICK


def tick_map_violation(ticks: dict[int, tuple[int, int]]) -> Violation | None:
    """Initialized ticks (tick -> (liquidityNet, liquidityGross)) within their ranges."""
    for tick, (net, gross) in ticks.items():
        if not MIN_TICK <= tick <= MAX_TICK:
            return Violation.TICK_RANGE
        if not (I128_MIN <= net <= I128_MAX and 0 <= gross <= U128_MAX):
            return Violation.LIQUIDITY_RANGE
    return None


def swap_violation(sqrt_price_x96: int, liquidity: int, tick: int) -> Violation | None:
    """The state a V3/V4 swap leaves: slot0's price and tick, the active liquidity, and
    the tick consistent with the price (once per swap, on the hot path)."""
    if not MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO:
        return Violation.SQRT_PRICE_RANGE
    if not MIN_TICK <= tick <= MAX_TICK:
        return Violation.TICK_RANGE
    if not 0 <= liquidity <= U128_MAX:
        return Violation.LIQUIDITY_RANGE
    estimate = tick_estimate(sqrt_price_x96)
    tolerance = _TOLERANCE + _INTEGER_ROUNDING / sqrt_price_x96
    if not estimate - 1 - tolerance <= tick <= estimate + tolerance:
        return Violation.TICK_PRICE_MISMATCH
    return None


def slot0_range_violation(sqrt_price_x96: int, liquidity: int, tick: int) -> Violation | None:
    """Each of slot0's values and the active liquidity within its own range (a loaded
    state: its tick is not checked against its price)."""
    violation = swap_violation(sqrt_price_x96, liquidity, tick)
    return None if violation is Violation.TICK_PRICE_MISMATCH else violation


def sync_violation(reserve0: int, reserve1: int) -> Violation | None:
    """A V2 pair stores its reserves as uint112."""
    if not (0 <= reserve0 <= U112_MAX and 0 <= reserve1 <= U112_MAX):
        return Violation.RESERVE_RANGE
    return None


def liquidity_violation(tick_lower: int, tick_upper: int, delta: int) -> Violation | None:
    """A mint or burn: the position's range and the int128 liquidity delta."""
    if not MIN_TICK <= tick_lower < tick_upper <= MAX_TICK:
        return Violation.TICK_ORDER
    if not I128_MIN <= delta <= I128_MAX:
        return Violation.LIQUIDITY_DELTA_RANGE
    return None
