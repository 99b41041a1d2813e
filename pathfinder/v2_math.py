"""UniswapV2Library getAmountOut/getAmountIn and the pair's K check, exact.

The fee is given in basis points; (10000 - fee_bps)/10000 is reduced to lowest terms so
that 30 bps uses exactly the contract's 997/1000 (same intermediate values, same uint256
overflow points).
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

from pathfinder.errors import (
    InsufficientAmountError,
    InsufficientLiquidityError,
    InvalidInputError,
    MathOverflowError,
)
from pathfinder.full_math import MAX_UINT256

__all__ = [
    "fee_fraction",
    "get_amount_out",
    "get_amount_in",
    "swap_satisfies_k",
]

_BPS = 10_000


@lru_cache(maxsize=64)
def fee_fraction(fee_bps: int) -> tuple[int, int]:
    """(kept, scale) with kept/scale == (10000 - fee_bps)/10000 in lowest terms."""
    if not 0 <= fee_bps < _BPS:
        raise InvalidInputError("fee_bps", fee_bps)
    kept = _BPS - fee_bps
    g = gcd(kept, _BPS)
    return kept // g, _BPS // g


def _check_uint256(operation: str, value: int, operands: tuple[int, ...]) -> None:
    if value > MAX_UINT256:
        raise MathOverflowError(operation, operands)


def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """Output of an exact-input swap against reserves, rounded down."""
    if amount_in <= 0:
        raise InsufficientAmountError("get_amount_out", amount_in)
    if reserve_in <= 0 or reserve_out <= 0:
        raise InsufficientLiquidityError("get_amount_out", amount_in, reserve_in, reserve_out)
    kept, scale = fee_fraction(fee_bps)
    amount_in_with_fee = amount_in * kept
    numerator = amount_in_with_fee * reserve_out
    denominator = reserve_in * scale + amount_in_with_fee
    if numerator > MAX_UINT256 or denominator > MAX_UINT256:
        _check_uint256("get_amount_out", amount_in_with_fee, (amount_in, kept))
        _check_uint256("get_amount_out", numerator, (amount_in_with_fee, reserve_out))
        _check_uint256("get_amount_out", denominator, (reserve_in, scale, amount_in_with_fee))
    return numerator // denominator


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int, fee_bps: int = 30) -> int:
    """Input needed for an exact-output swap; floor + 1 exactly as the library does."""
    if amount_out <= 0:
        raise InsufficientAmountError("get_amount_in", amount_out)
    if reserve_in <= 0 or reserve_out <= 0 or amount_out >= reserve_out:
        # amount_out >= reserve_out reverts in the library too (SafeMath underflow or a
        # division by zero).
        raise InsufficientLiquidityError("get_amount_in", amount_out, reserve_in, reserve_out)
    kept, scale = fee_fraction(fee_bps)
    numerator = reserve_in * amount_out * scale
    denominator = (reserve_out - amount_out) * kept
    if numerator > MAX_UINT256 or denominator > MAX_UINT256:
        _check_uint256("get_amount_in", reserve_in * amount_out, (reserve_in, amount_out))
        _check_uint256("get_amount_in", numerator, (reserve_in, amount_out, scale))
        _check_uint256("get_amount_in", denominator, (reserve_out, amount_out, kept))
    return numerator // denominator + 1


def swap_satisfies_k(
    reserve0: int,
    reserve1: int,
    *,
    amount0_in: int,
    amount1_in: int,
    amount0_out: int,
    amount1_out: int,
    fee_bps: int = 30,
) -> bool:
    """UniswapV2Pair.swap's fee-adjusted constant-product check for the given flows.

    Balances after the swap are reserve + in - out; an output not below its reserve fails.
    """
    if amount0_out >= reserve0 or amount1_out >= reserve1:
        return False
    kept, scale = fee_fraction(fee_bps)
    fee = scale - kept
    balance0 = reserve0 + amount0_in - amount0_out
    balance1 = reserve1 + amount1_in - amount1_out
    adjusted0 = balance0 * scale - amount0_in * fee
    adjusted1 = balance1 * scale - amount1_in * fee
    return adjusted0 * adjusted1 >= reserve0 * reserve1 * scale * scale
