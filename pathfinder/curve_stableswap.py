"""Curve StableSwap-NG plain-pool exchange math, integer for integer as the pool computes.

`get_dy(pool, i, j, dx, timestamp)` is what `exchange(i, j, dx, 0)` pays out at a block
with that timestamp, to the wei, or raises `CurveRevertError` where the pool would revert:
`dx == 0`, a uint256 overflow or underflow in a checked operation, a division by zero,
no convergence, or the post-swap price-oracle update (`_get_p`, the D oracle packing)
overflowing. Plain pools only: every coin's rate is its stored rate multiplier
(10**(36 - decimals)); the balances are the effective ones, stored minus admin balances,
as the pool's `balances(i)` returns them and the stream's `CurveLiquidity` carries.

The steps, as in the pool: `xp = rates * balances / 1e18`; `x = xp[i] + dx * rates[i] /
1e18`; `D = get_D(xp, A)`, `y = get_y(i, j, x, xp, A, D)`; `dy = xp[j] - y - 1`; the
dynamic fee at the average of the pre- and post-swap xp of i and j; `dy = (dy - fee) *
1e18 / rates[j]`. A ramps linearly between its initial and future values by the block
timestamp (A_PRECISION = 100).

The admin fee (half of the fee) leaves the effective balances: after a swap the pool's
effective balance of j falls by the amount paid out plus the admin share
(`apply_exchange` returns the state after a swap, as the stream would next carry it).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from pathfinder.errors import PathfinderError

A_PRECISION: Final = 100
PRECISION: Final = 10**18
FEE_DENOMINATOR: Final = 10**10
ADMIN_FEE: Final = 5_000_000_000  # half the fee, fixed in StableSwap-NG
MAX_ITERATIONS: Final = 255
_U256_MAX: Final = 2**256 - 1
_U128: Final = 2**128


class CurveRevertError(PathfinderError):
    """The pool would revert this exchange; `reason` says which check fails."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StableSwapPool(NamedTuple):
    """What the exchange math reads: effective balances, rates and parameters."""

    balances: tuple[int, ...]
    rates: tuple[int, ...]
    fee: int
    offpeg_fee_multiplier: int
    initial_a: int
    future_a: int
    initial_a_time: int
    future_a_time: int


def _u(value: int, what: str) -> int:
    """A checked uint256 result: raises CurveRevertError outside [0, 2**256)."""
    if value < 0 or value > _U256_MAX:
        raise CurveRevertError(f"uint256 {'underflow' if value < 0 else 'overflow'} in {what}")
    return value


def _div(a: int, b: int, what: str) -> int:
    if b == 0:
        raise CurveRevertError(f"division by zero in {what}")
    return a // b


def amp_at(pool: StableSwapPool, timestamp: int) -> int:
    """`_A()`: A * A_PRECISION at `timestamp` (linear ramp, then the future value)."""
    t1, a1 = pool.future_a_time, pool.future_a
    if timestamp < t1:
        a0, t0 = pool.initial_a, pool.initial_a_time
        elapsed = _u(timestamp - t0, "A ramp time")
        if a1 > a0:
            return _u(a0 + _div(_u((a1 - a0) * elapsed, "A ramp"), t1 - t0, "A ramp"), "A")
        return _u(a0 - _div(_u((a0 - a1) * elapsed, "A ramp"), t1 - t0, "A ramp"), "A")
    return a1


def xp_of(balances: tuple[int, ...], rates: tuple[int, ...]) -> list[int]:
    """`_xp_mem`: balances in the pool's common 1e18 precision."""
    return [_u(r * b, "xp") // PRECISION for r, b in zip(rates, balances, strict=True)]


def get_d(xp: list[int], amp: int) -> int:
    """The invariant D (`get_D`), with the pool's rounding and checked arithmetic."""
    n = len(xp)
    s = _u(sum(xp), "get_D sum")
    if s == 0:
        return 0
    d = s
    ann = _u(amp * n, "get_D Ann")
    nn = n**n
    ann_s = _u(ann * s, "get_D Ann*S") // A_PRECISION
    if ann < A_PRECISION:
        raise CurveRevertError("uint256 underflow in get_D (Ann - A_PRECISION)")
    ann_minus = ann - A_PRECISION
    for _ in range(MAX_ITERATIONS):
        d_p = d
        for x in xp:
            d_p = _div(_u(d_p * d, "get_D D_P"), x, "get_D D_P")
        d_p //= nn
        d_prev = d
        numerator = _u(_u(ann_s + _u(d_p * n, "get_D"), "get_D") * d, "get_D numerator")
        denominator = _u(
            _u(ann_minus * d, "get_D") // A_PRECISION + _u((n + 1) * d_p, "get_D"), "get_D"
        )
        d = _div(numerator, denominator, "get_D")
        if abs(d - d_prev) <= 1:
            return d
    raise CurveRevertError("get_D did not converge")


def get_y(i: int, j: int, x: int, xp: list[int], *, amp: int, d: int) -> int:
    """The balance of coin j (`get_y`) when coin i's is `x`, at invariant `d`."""
    n = len(xp)
    if i == j or not (0 <= i < n and 0 <= j < n):
        raise CurveRevertError("coin index out of range")
    c = d
    s_ = 0
    ann = _u(amp * n, "get_y Ann")
    for k in range(n):
        if k == i:
            x_k = x
        elif k != j:
            x_k = xp[k]
        else:
            continue
        s_ = _u(s_ + x_k, "get_y S")
        c = _div(_u(c * d, "get_y c"), _u(x_k * n, "get_y c"), "get_y c")
    c = _div(_u(_u(c * d, "get_y c") * A_PRECISION, "get_y c"), _u(ann * n, "get_y"), "get_y c")
    b = _u(s_ + _div(_u(d * A_PRECISION, "get_y b"), ann, "get_y b"), "get_y b")
    y = d
    for _ in range(MAX_ITERATIONS):
        y_prev = y
        numerator = _u(_u(y * y, "get_y") + c, "get_y")
        denominator = _u(_u(_u(2 * y, "get_y") + b, "get_y") - d, "get_y denominator")
        y = _div(numerator, denominator, "get_y")
        if abs(y - y_prev) <= 1:
            return y
    raise CurveRevertError("get_y did not converge")


def dynamic_fee(xpi: int, xpj: int, fee: int, offpeg_fee_multiplier: int) -> int:
    """`_dynamic_fee`: the fee (1e10) raised off peg by the offpeg multiplier."""
    if offpeg_fee_multiplier <= FEE_DENOMINATOR:
        return fee
    xps2 = _u(_u(xpi + xpj, "dynamic fee") ** 2, "dynamic fee")
    skew = _div(
        _u(_u(_u((offpeg_fee_multiplier - FEE_DENOMINATOR) * 4, "fee") * xpi, "fee") * xpj, "fee"),
        xps2,
        "dynamic fee",
    )
    # the pool's unsafe_mul / unsafe_add / unsafe_div: wrapping, and x / 0 = 0
    numerator = (offpeg_fee_multiplier * fee) & _U256_MAX
    denominator = (skew + FEE_DENOMINATOR) & _U256_MAX
    return numerator // denominator if denominator else 0


class Exchange(NamedTuple):
    """One exchange: what it pays out, its fee in xp units, and the new balances."""

    dy: int
    dy_fee: int
    admin_fee: int  # native units of coin j, leaving the effective balances
    balances: tuple[int, ...]  # effective balances after the exchange


def exchange(pool: StableSwapPool, i: int, j: int, dx: int, timestamp: int) -> Exchange:
    """The exchange of `dx` of coin i for coin j, as `exchange(i, j, dx, 0)` executes it."""
    if dx <= 0:
        raise CurveRevertError("dx == 0: the pool asserts _dx > 0")
    n = len(pool.balances)
    if i == j or not (0 <= i < n and 0 <= j < n):
        raise CurveRevertError("coin index out of range")
    rates = pool.rates
    xp = xp_of(pool.balances, rates)
    x = _u(xp[i] + _u(dx * rates[i], "dx * rate") // PRECISION, "x")
    amp = amp_at(pool, timestamp)
    d = get_d(xp, amp)
    y = get_y(i, j, x, xp, amp=amp, d=d)
    dy = _u(xp[j] - y - 1, "dy")
    fee = dynamic_fee(
        _u(xp[i] + x, "fee average") // 2,
        _u(xp[j] + y, "fee average") // 2,
        pool.fee,
        pool.offpeg_fee_multiplier,
    )
    dy_fee = _u(dy * fee, "dy fee") // FEE_DENOMINATOR
    dy_out = _div(_u(_u(dy - dy_fee, "dy") * PRECISION, "dy"), rates[j], "dy")
    admin = _div(
        _u(_u(dy_fee * ADMIN_FEE, "admin fee") // FEE_DENOMINATOR * PRECISION, "admin"),
        rates[j],
        "admin fee",
    )
    after = list(xp)
    after[i], after[j] = x, y
    _check_oracle_update(after, amp, d)
    balances = list(pool.balances)
    balances[i] = _u(balances[i] + dx, "balance")
    balances[j] = _u(balances[j] - dy_out - admin, "balance")
    return Exchange(dy_out, dy_fee, admin, tuple(balances))


def get_dy(pool: StableSwapPool, i: int, j: int, dx: int, timestamp: int) -> int:
    """The amount of coin j `exchange(i, j, dx, 0)` pays out at `timestamp`."""
    return exchange(pool, i, j, dx, timestamp).dy


def _check_oracle_update(xp: list[int], amp: int, d: int) -> None:
    """The post-swap oracle upkeep's checked arithmetic: `_get_p` of the new xp with the
    pre-swap D, and `pack_2(D, ...)` asserting D < 2**128. Its values are not needed."""
    n = len(xp)
    ann = amp * n
    dr = d // n**n
    for x in xp:
        dr = _div(_u(dr * d, "oracle price"), x, "oracle price")
    xp0_a = _u(ann * xp[0], "oracle price") // A_PRECISION
    den = _u(xp0_a + dr, "oracle price")
    for k in range(1, n):
        num = _u(xp0_a + _u(dr * xp[0], "oracle price") // xp[k], "oracle price")
        _div(_u(PRECISION * num, "oracle price"), den, "oracle price")
    if d >= _U128:
        raise CurveRevertError("D oracle packing: D >= 2**128")
