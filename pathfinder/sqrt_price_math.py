"""Uniswap v3-core SqrtPriceMath on Python ints, with the contract's revert conditions.

Prices are Q64.96 sqrt prices (uint160), liquidity is uint128, amounts are uint256.
Wherever the contract relies on a wrapped multiplication or a checked add/cast, the same
condition is tested explicitly and raises a MathError subclass.
"""

from __future__ import annotations

from pathfinder.errors import MathDivisionByZeroError, MathDomainError, MathOverflowError
from pathfinder.full_math import (
    MAX_INT256,
    MAX_UINT160,
    MAX_UINT256,
    Q96,
    div_rounding_up,
    mul_div,
    mul_div_rounding_up,
)

__all__ = [
    "get_next_sqrt_price_from_amount0_rounding_up",
    "get_next_sqrt_price_from_amount1_rounding_down",
    "get_next_sqrt_price_from_input",
    "get_next_sqrt_price_from_output",
    "get_amount0_delta",
    "get_amount1_delta",
    "get_amount0_delta_signed",
    "get_amount1_delta_signed",
]


def get_next_sqrt_price_from_amount0_rounding_up(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Price after adding (add=True) or removing `amount` of token0, rounded up."""
    if amount == 0:
        return sqrt_price_x96
    numerator1 = liquidity << 96
    product = amount * sqrt_price_x96
    if add:
        if product <= MAX_UINT256:
            denominator = numerator1 + product
            if denominator <= MAX_UINT256:
                return mul_div_rounding_up(numerator1, sqrt_price_x96, denominator)
        # The contract's fallback when amount*price overflows 256 bits: a less precise
        # formula that still rounds up.
        divisor = numerator1 // sqrt_price_x96 + amount
        if divisor > MAX_UINT256:
            raise MathOverflowError(
                "get_next_sqrt_price_from_amount0_rounding_up",
                (sqrt_price_x96, liquidity, amount, 1),
            )
        return div_rounding_up(numerator1, divisor)
    if product > MAX_UINT256 or numerator1 <= product:
        raise MathDomainError(
            "get_next_sqrt_price_from_amount0_rounding_up",
            (sqrt_price_x96, liquidity, amount, 0),
        )
    result = mul_div_rounding_up(numerator1, sqrt_price_x96, numerator1 - product)
    if result > MAX_UINT160:
        raise MathOverflowError(
            "get_next_sqrt_price_from_amount0_rounding_up",
            (sqrt_price_x96, liquidity, amount, 0),
        )
    return result


def get_next_sqrt_price_from_amount1_rounding_down(
    sqrt_price_x96: int, liquidity: int, amount: int, add: bool
) -> int:
    """Price after adding (add=True) or removing `amount` of token1, rounded down."""
    if add:
        if amount <= MAX_UINT160:
            if liquidity == 0:
                raise MathDivisionByZeroError(
                    "get_next_sqrt_price_from_amount1_rounding_down",
                    (sqrt_price_x96, liquidity, amount, 1),
                )
            quotient = (amount << 96) // liquidity
        else:
            quotient = mul_div(amount, Q96, liquidity)
        result = sqrt_price_x96 + quotient
        if result > MAX_UINT160:
            raise MathOverflowError(
                "get_next_sqrt_price_from_amount1_rounding_down",
                (sqrt_price_x96, liquidity, amount, 1),
            )
        return result
    if amount <= MAX_UINT160:
        quotient = div_rounding_up(amount << 96, liquidity)
    else:
        quotient = mul_div_rounding_up(amount, Q96, liquidity)
    if sqrt_price_x96 <= quotient:
        raise MathDomainError(
            "get_next_sqrt_price_from_amount1_rounding_down",
            (sqrt_price_x96, liquidity, amount, 0),
        )
    return sqrt_price_x96 - quotient


def get_next_sqrt_price_from_input(
    sqrt_price_x96: int, liquidity: int, amount_in: int, zero_for_one: bool
) -> int:
    """Price after `amount_in` enters; rounds so the target price is never passed."""
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise MathDomainError("get_next_sqrt_price_from_input", (sqrt_price_x96, liquidity))
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(
            sqrt_price_x96, liquidity, amount_in, True
        )
    return get_next_sqrt_price_from_amount1_rounding_down(
        sqrt_price_x96, liquidity, amount_in, True
    )


def get_next_sqrt_price_from_output(
    sqrt_price_x96: int, liquidity: int, amount_out: int, zero_for_one: bool
) -> int:
    """Price after `amount_out` leaves; rounds so the target price is reached."""
    if sqrt_price_x96 <= 0 or liquidity <= 0:
        raise MathDomainError("get_next_sqrt_price_from_output", (sqrt_price_x96, liquidity))
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(
            sqrt_price_x96, liquidity, amount_out, False
        )
    return get_next_sqrt_price_from_amount0_rounding_up(
        sqrt_price_x96, liquidity, amount_out, False
    )


def get_amount0_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """Token0 between two prices: liquidity * (sqrt(b) - sqrt(a)) / (sqrt(a) * sqrt(b))."""
    if sqrt_ratio_a_x96 > sqrt_ratio_b_x96:
        sqrt_ratio_a_x96, sqrt_ratio_b_x96 = sqrt_ratio_b_x96, sqrt_ratio_a_x96
    if sqrt_ratio_a_x96 <= 0:
        raise MathDomainError("get_amount0_delta", (sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity))
    numerator1 = liquidity << 96
    numerator2 = sqrt_ratio_b_x96 - sqrt_ratio_a_x96
    if round_up:
        return div_rounding_up(
            mul_div_rounding_up(numerator1, numerator2, sqrt_ratio_b_x96), sqrt_ratio_a_x96
        )
    return mul_div(numerator1, numerator2, sqrt_ratio_b_x96) // sqrt_ratio_a_x96


def get_amount1_delta(
    sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int, round_up: bool
) -> int:
    """Token1 between two prices: liquidity * (sqrt(b) - sqrt(a))."""
    product = liquidity * abs(sqrt_ratio_b_x96 - sqrt_ratio_a_x96)
    # uint128 * uint160 / 2**96 cannot overflow uint256, so the mulDiv reduces to shifts.
    if round_up:
        return -((-product) >> 96)
    return product >> 96


def get_amount0_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """Signed token0 delta for a signed liquidity change (rounded up when adding)."""
    if liquidity < 0:
        result = -get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False)
    else:
        result = get_amount0_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True)
    if abs(result) > MAX_INT256:
        raise MathOverflowError(
            "get_amount0_delta_signed", (sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity)
        )
    return result


def get_amount1_delta_signed(sqrt_ratio_a_x96: int, sqrt_ratio_b_x96: int, liquidity: int) -> int:
    """Signed token1 delta for a signed liquidity change (rounded up when adding)."""
    if liquidity < 0:
        result = -get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, -liquidity, False)
    else:
        result = get_amount1_delta(sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity, True)
    if abs(result) > MAX_INT256:
        raise MathOverflowError(
            "get_amount1_delta_signed", (sqrt_ratio_a_x96, sqrt_ratio_b_x96, liquidity)
        )
    return result
