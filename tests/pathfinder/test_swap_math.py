"""computeSwapStep against Uniswap v3-core's SwapMath.spec.ts, plus its invariants."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathfinder.errors import MathError
from pathfinder.full_math import MAX_INT256, MAX_UINT128
from pathfinder.sqrt_price_math import (
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from pathfinder.swap_math import compute_swap_step
from pathfinder.tick_math import MAX_SQRT_RATIO
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("swap_math.json")


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["it"])
def test_compute_swap_step_spec_vectors(case: dict[str, Any]) -> None:
    current, target = int(case["sqrt_ratio_current"]), int(case["sqrt_ratio_target"])
    liquidity, remaining = int(case["liquidity"]), int(case["amount_remaining"])
    nxt, amount_in, amount_out, fee = compute_swap_step(
        current, target, liquidity, remaining, case["fee_pips"]
    )
    assert amount_in == int(case["amount_in"])
    assert amount_out == int(case["amount_out"])
    assert fee == int(case["fee_amount"])
    zero_for_one = current >= target
    expected_next = case["sqrt_ratio_next"]
    if isinstance(expected_next, str):
        assert nxt == int(expected_next)
    elif expected_next.get("from_input_less_fee"):
        assert nxt == get_next_sqrt_price_from_input(
            current, liquidity, remaining - fee, zero_for_one
        )
        assert nxt != target
    else:
        assert nxt == get_next_sqrt_price_from_output(current, liquidity, -remaining, zero_for_one)
        assert nxt != target
    if remaining >= 0:
        assert amount_in + fee <= remaining
    else:
        assert amount_out <= -remaining


def test_capped_exact_input_stops_short_of_the_whole_amount() -> None:
    # From the spec: the capped step's price is below the price the whole input would give.
    case = VECTORS["cases"][0]
    current, target = int(case["sqrt_ratio_current"]), int(case["sqrt_ratio_target"])
    liquidity, amount = int(case["liquidity"]), int(case["amount_remaining"])
    nxt, amount_in, _, fee = compute_swap_step(current, target, liquidity, amount, 600)
    assert amount_in + fee < amount
    assert nxt < get_next_sqrt_price_from_input(current, liquidity, amount, False)


prices = st.integers(min_value=1, max_value=MAX_SQRT_RATIO)
fees = st.integers(min_value=1, max_value=999_999)
remaining_amounts = st.integers(min_value=-MAX_INT256, max_value=MAX_INT256) | st.integers(
    min_value=-(10**30), max_value=10**30
)


@settings(max_examples=600, deadline=None)
@given(prices, prices, st.integers(min_value=0, max_value=MAX_UINT128), remaining_amounts, fees)
def test_compute_swap_step_invariants(
    price: int, target: int, liquidity: int, remaining: int, fee_pips: int
) -> None:
    # The invariants of Uniswap's SwapMathEchidnaTest.
    try:
        nxt, amount_in, amount_out, fee = compute_swap_step(
            price, target, liquidity, remaining, fee_pips
        )
    except MathError:
        return
    if remaining < 0:
        assert amount_out <= -remaining
    else:
        assert amount_in + fee <= remaining
    if price == target:
        assert (nxt, amount_in, amount_out, fee) == (target, 0, 0, 0)
    if nxt != target:
        # Target not reached: the whole amount was used.
        if remaining < 0:
            assert amount_out == -remaining
        else:
            assert amount_in + fee == remaining
    # The price moves toward the target and never past it.
    if target <= price:
        assert target <= nxt <= price
    else:
        assert price <= nxt <= target
