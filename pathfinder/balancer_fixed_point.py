"""Balancer V2's 18-decimal fixed point (`FixedPoint`) and `LogExpMath.pow`, exact.

Every operation gives the value the Vault's pools compute on uint256/int256, and raises
:class:`~pathfinder.errors.MathError` where the contract reverts (the reason is Balancer's
error code, e.g. "BAL#001" for a subtraction underflow). Solidity's signed division
truncates toward zero and `%` takes the dividend's sign; `_div` and `_mod` do the same.

Two generations of `FixedPoint.powUp`/`powDown` exist: the first weighted pools
(20210418) always go through `LogExpMath.pow` and widen the result by its relative error
bound; the later ones (20220908 weighted pool v2 onwards) compute exponents of exactly 1,
2 and 4 with plain multiplications. `PowRule` names the two.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from pathfinder.errors import MathDivisionByZeroError, MathDomainError, MathOverflowError
from pathfinder.full_math import MAX_UINT256

__all__ = [
    "ONE",
    "PowRule",
    "add",
    "sub",
    "mul_down",
    "mul_up",
    "div_down",
    "div_up",
    "complement",
    "pow_up",
    "pow_down",
    "log_exp_pow",
]

ONE: Final = 10**18
MAX_POW_RELATIVE_ERROR: Final = 10_000  # 1e-14

_ONE_20: Final = 10**20
_ONE_36: Final = 10**36
_MAX_NATURAL_EXPONENT: Final = 130 * 10**18
_MIN_NATURAL_EXPONENT: Final = -41 * 10**18
_LN_36_LOWER_BOUND: Final = ONE - 10**17
_LN_36_UPPER_BOUND: Final = ONE + 10**17
_MILD_EXPONENT_BOUND: Final = 2**254 // _ONE_20

# e^(x_n) for the exponent decomposition: the first two without decimals, the rest with
# 20; the figures are the ones LogExpMath publishes (rounded to about 21 digits).
_X0: Final = 128 * 10**18
_A0: Final = 38877084059945950922200 * 10**33
_X1: Final = 64 * 10**18
_A1: Final = 6235149080811616882910000000
_X_A_20: Final = (
    (3200 * 10**18, 7896296018268069516100 * 10**12),
    (1600 * 10**18, 888611052050787263676 * 10**6),
    (800 * 10**18, 298095798704172827474 * 10**3),
    (400 * 10**18, 5459815003314423907810),
    (200 * 10**18, 738905609893065022723),
    (100 * 10**18, 271828182845904523536),
    (50 * 10**18, 164872127070012814685),
    (25 * 10**18, 128402541668774148407),
    (12_500_000_000_000_000_000, 113314845306682631683),
    (6_250_000_000_000_000_000, 106449445891785942956),
)
_MAX_INT256: Final = 2**255 - 1


class PowRule(Enum):
    """How `FixedPoint.powUp`/`powDown` treat exponents 1, 2 and 4."""

    ALWAYS_LOG_EXP = "always_log_exp"  # 20210418 weighted pools
    SHORTCUT_1_2_4 = "shortcut_1_2_4"  # 20220908 weighted pool v2 and later


def _div(a: int, b: int) -> int:
    """Solidity int256 division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _mod(a: int, b: int) -> int:
    return a - _div(a, b) * b


def add(a: int, b: int) -> int:
    c = a + b
    if c > MAX_UINT256:
        raise MathOverflowError("add", (a, b), "BAL#000")
    return c


def sub(a: int, b: int) -> int:
    if b > a:
        raise MathOverflowError("sub", (a, b), "BAL#001")
    return a - b


def _product(op: str, a: int, b: int) -> int:
    product = a * b
    if product > MAX_UINT256:
        raise MathOverflowError(op, (a, b), "BAL#003")
    return product


def mul_down(a: int, b: int) -> int:
    return _product("mul_down", a, b) // ONE


def mul_up(a: int, b: int) -> int:
    product = _product("mul_up", a, b)
    return 0 if product == 0 else (product - 1) // ONE + 1


def div_down(a: int, b: int) -> int:
    if b == 0:
        raise MathDivisionByZeroError("div_down", (a, b), "BAL#004")
    return 0 if a == 0 else _product("div_down", a, ONE) // b


def div_up(a: int, b: int) -> int:
    if b == 0:
        raise MathDivisionByZeroError("div_up", (a, b), "BAL#004")
    return 0 if a == 0 else (_product("div_up", a, ONE) - 1) // b + 1


def complement(x: int) -> int:
    return ONE - x if x < ONE else 0


def _exp(x: int) -> int:
    if not _MIN_NATURAL_EXPONENT <= x <= _MAX_NATURAL_EXPONENT:
        raise MathDomainError("exp", (x,), "BAL#009")
    if x < 0:
        return (ONE * ONE) // _exp(-x)
    first_an = 1
    if x >= _X0:
        x, first_an = x - _X0, _A0
    elif x >= _X1:
        x, first_an = x - _X1, _A1
    x *= 100
    product = _ONE_20
    for x_n, a_n in _X_A_20[:8]:  # x2 … x9
        if x >= x_n:
            x -= x_n
            product = (product * a_n) // _ONE_20
    series = _ONE_20
    term = x
    series += term
    for n in range(2, 13):
        term = ((term * x) // _ONE_20) // n
        series += term
    return (((product * series) // _ONE_20) * first_an) // 100


def _ln(a: int) -> int:
    if a < ONE:
        return -_ln((ONE * ONE) // a)
    total = 0
    if a >= _A0 * ONE:
        a //= _A0
        total += _X0
    if a >= _A1 * ONE:
        a //= _A1
        total += _X1
    total *= 100
    a *= 100
    for x_n, a_n in _X_A_20:  # x2 … x11
        if a >= a_n:
            a = (a * _ONE_20) // a_n
            total += x_n
    z = ((a - _ONE_20) * _ONE_20) // (a + _ONE_20)
    z_squared = (z * z) // _ONE_20
    num = z
    series = num
    for n in (3, 5, 7, 9, 11):
        num = (num * z_squared) // _ONE_20
        series += num // n
    return (total + series * 2) // 100


def _ln_36(x: int) -> int:
    x *= ONE
    z = _div((x - _ONE_36) * _ONE_36, x + _ONE_36)
    z_squared = (z * z) // _ONE_36
    num = z
    series = num
    for n in (3, 5, 7, 9, 11, 13, 15):
        num = _div(num * z_squared, _ONE_36)
        series += _div(num, n)
    return series * 2


def log_exp_pow(x: int, y: int) -> int:
    """`LogExpMath.pow(x, y)`: x^y for 18-decimal x and y, rounded as the contract does."""
    if y == 0:
        return ONE
    if x == 0:
        return 0
    if x > _MAX_INT256:
        raise MathDomainError("pow", (x, y), "BAL#006")
    if y >= _MILD_EXPONENT_BOUND:
        raise MathDomainError("pow", (x, y), "BAL#007")
    if _LN_36_LOWER_BOUND < x < _LN_36_UPPER_BOUND:
        ln_36_x = _ln_36(x)
        logx_times_y = _div(ln_36_x, ONE) * y + _div(_mod(ln_36_x, ONE) * y, ONE)
    else:
        logx_times_y = _ln(x) * y
    logx_times_y = _div(logx_times_y, ONE)
    if not _MIN_NATURAL_EXPONENT <= logx_times_y <= _MAX_NATURAL_EXPONENT:
        raise MathDomainError("pow", (x, y), "BAL#008")
    return _exp(logx_times_y)


def _max_error(raw: int) -> int:
    return add(mul_up(raw, MAX_POW_RELATIVE_ERROR), 1)


def pow_up(x: int, y: int, rule: PowRule) -> int:
    """`FixedPoint.powUp`: an upper bound of x^y."""
    if rule is PowRule.SHORTCUT_1_2_4:
        if y == ONE:
            return x
        if y == 2 * ONE:
            return mul_up(x, x)
        if y == 4 * ONE:
            square = mul_up(x, x)
            return mul_up(square, square)
    raw = log_exp_pow(x, y)
    return add(raw, _max_error(raw))


def pow_down(x: int, y: int, rule: PowRule) -> int:
    """`FixedPoint.powDown`: a lower bound of x^y (never below zero)."""
    if rule is PowRule.SHORTCUT_1_2_4:
        if y == ONE:
            return x
        if y == 2 * ONE:
            return mul_down(x, x)
        if y == 4 * ONE:
            square = mul_down(x, x)
            return mul_down(square, square)
    raw = log_exp_pow(x, y)
    error = _max_error(raw)
    return 0 if raw < error else raw - error
