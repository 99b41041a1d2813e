"""Uniswap's FullMath, UnsafeMath and LiquidityMath on Python ints.

Python ints never overflow, so the 512-bit tricks of the contract are not needed; what
must be reproduced are the cases where the contract reverts, which raise
:class:`~pathfinder.errors.MathError` subclasses here. Operands are assumed to be in the
Solidity type's range (uint256 unless noted); callers inside the package guarantee it.
"""

from __future__ import annotations

from pathfinder.errors import MathDivisionByZeroError, MathOverflowError

__all__ = [
    "Q96",
    "Q128",
    "MAX_UINT128",
    "MAX_UINT160",
    "MAX_UINT256",
    "MAX_INT128",
    "MAX_INT256",
    "mul_div",
    "mul_div_rounding_up",
    "div_rounding_up",
    "add_delta",
]

Q96 = 1 << 96
Q128 = 1 << 128
MAX_UINT128 = (1 << 128) - 1
MAX_UINT160 = (1 << 160) - 1
MAX_UINT256 = (1 << 256) - 1
MAX_INT128 = (1 << 127) - 1
MAX_INT256 = (1 << 255) - 1


def mul_div(a: int, b: int, denominator: int) -> int:
    """floor(a*b/denominator); reverts like FullMath.mulDiv on zero denominator or a
    result above uint256."""
    if denominator == 0:
        raise MathDivisionByZeroError("mul_div", (a, b, denominator))
    result = a * b // denominator
    if result > MAX_UINT256:
        raise MathOverflowError("mul_div", (a, b, denominator))
    return result


def mul_div_rounding_up(a: int, b: int, denominator: int) -> int:
    """ceil(a*b/denominator); also reverts when only the rounding pushes it past uint256."""
    if denominator == 0:
        raise MathDivisionByZeroError("mul_div_rounding_up", (a, b, denominator))
    result = -(-(a * b) // denominator)
    if result > MAX_UINT256:
        raise MathOverflowError("mul_div_rounding_up", (a, b, denominator))
    return result


def div_rounding_up(x: int, y: int) -> int:
    """UnsafeMath.divRoundingUp: ceil(x/y), and 0 when y == 0 (EVM division semantics)."""
    if y == 0:
        return 0
    return -(-x // y)


def add_delta(liquidity: int, delta: int) -> int:
    """LiquidityMath.addDelta: uint128 plus int128, reverting "LS"/"LA" outside uint128."""
    result = liquidity + delta
    if result < 0:
        raise MathOverflowError("add_delta", (liquidity, delta), "LS")
    if result > MAX_UINT128:
        raise MathOverflowError("add_delta", (liquidity, delta), "LA")
    return result
