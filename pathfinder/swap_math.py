"""Uniswap v3-core SwapMath.computeSwapStep, bit-exact."""

from __future__ import annotations

from pathfinder.full_math import mul_div_rounding_up
from pathfinder.sqrt_price_math import (
    get_amount0_delta,
    get_amount1_delta,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)

__all__ = [
    "compute_swap_step",
]

_PIPS = 1_000_000


def compute_swap_step(
    sqrt_ratio_current: int,
    sqrt_ratio_target: int,
    liquidity: int,
    amount_remaining: int,
    fee_pips: int,
) -> tuple[int, int, int, int]:
    """One swap step within a single liquidity range.

    ``amount_remaining`` >= 0 is an exact input still to spend (fee included), < 0 an exact
    output still to receive. The direction is implied by the target: a target at or below
    the current price is zero-for-one. Returns
    ``(sqrt_ratio_next, amount_in, amount_out, fee_amount)``; ``amount_in`` excludes the fee.
    """
    zero_for_one = sqrt_ratio_current >= sqrt_ratio_target
    exact_in = amount_remaining >= 0
    amount_in = 0
    amount_out = 0

    if exact_in:
        remaining_less_fee = amount_remaining * (_PIPS - fee_pips) // _PIPS
        if zero_for_one:
            amount_in = get_amount0_delta(sqrt_ratio_target, sqrt_ratio_current, liquidity, True)
        else:
            amount_in = get_amount1_delta(sqrt_ratio_current, sqrt_ratio_target, liquidity, True)
        if remaining_less_fee >= amount_in:
            sqrt_ratio_next = sqrt_ratio_target
        else:
            sqrt_ratio_next = get_next_sqrt_price_from_input(
                sqrt_ratio_current, liquidity, remaining_less_fee, zero_for_one
            )
    else:
        if zero_for_one:
            amount_out = get_amount1_delta(sqrt_ratio_target, sqrt_ratio_current, liquidity, False)
        else:
            amount_out = get_amount0_delta(sqrt_ratio_current, sqrt_ratio_target, liquidity, False)
        if -amount_remaining >= amount_out:
            sqrt_ratio_next = sqrt_ratio_target
        else:
            sqrt_ratio_next = get_next_sqrt_price_from_output(
                sqrt_ratio_current, liquidity, -amount_remaining, zero_for_one
            )

    reached_target = sqrt_ratio_target == sqrt_ratio_next
    # The amount computed against the target is reused only when the target was reached;
    # otherwise both sides are recomputed against the price actually reached.
    if zero_for_one:
        if not (reached_target and exact_in):
            amount_in = get_amount0_delta(sqrt_ratio_next, sqrt_ratio_current, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = get_amount1_delta(sqrt_ratio_next, sqrt_ratio_current, liquidity, False)
    else:
        if not (reached_target and exact_in):
            amount_in = get_amount1_delta(sqrt_ratio_current, sqrt_ratio_next, liquidity, True)
        if not (reached_target and not exact_in):
            amount_out = get_amount0_delta(sqrt_ratio_current, sqrt_ratio_next, liquidity, False)

    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining

    if exact_in and not reached_target:
        # The input was not enough to reach the target: whatever is left is the fee.
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, _PIPS - fee_pips)
    return sqrt_ratio_next, amount_in, amount_out, fee_amount
