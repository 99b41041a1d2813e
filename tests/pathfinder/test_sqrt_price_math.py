"""SqrtPriceMath against Uniswap v3-core's SqrtPriceMath.spec.ts, plus properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pathfinder.errors import MathError, MathOverflowError
from pathfinder.full_math import MAX_UINT128, MAX_UINT160, MAX_UINT256, Q96
from pathfinder.sqrt_price_math import (
    get_amount0_delta,
    get_amount0_delta_signed,
    get_amount1_delta,
    get_amount1_delta_signed,
    get_next_sqrt_price_from_amount0_rounding_up,
    get_next_sqrt_price_from_amount1_rounding_down,
    get_next_sqrt_price_from_input,
    get_next_sqrt_price_from_output,
)
from pathfinder.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("sqrt_price_math.json")
NEXT = {
    "from_input": get_next_sqrt_price_from_input,
    "from_output": get_next_sqrt_price_from_output,
}
DELTA = {"amount0": get_amount0_delta, "amount1": get_amount1_delta}

prices = st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO)
liquidities = st.integers(min_value=1, max_value=MAX_UINT128)
amounts = st.integers(min_value=0, max_value=MAX_UINT256 >> 1)


@pytest.mark.parametrize("case", VECTORS["next_sqrt_price"], ids=lambda c: f"{c['fn']}: {c['it']}")
def test_next_sqrt_price_spec_vectors(case: dict[str, Any]) -> None:
    fn = NEXT[case["fn"]]
    args = (int(case["sqrt_price"]), int(case["liquidity"]), int(case["amount"]))
    if case["result"] is None:
        with pytest.raises(MathError):
            fn(*args, case["zero_for_one"])
    else:
        assert fn(*args, case["zero_for_one"]) == int(case["result"])


@pytest.mark.parametrize("case", VECTORS["amount_delta"], ids=lambda c: f"{c['fn']}: {c['it']}")
def test_amount_delta_spec_vectors(case: dict[str, Any]) -> None:
    fn = DELTA[case["fn"]]
    a, b, liquidity = int(case["sqrt_ratio_a"]), int(case["sqrt_ratio_b"]), int(case["liquidity"])
    assert fn(a, b, liquidity, case["round_up"]) == int(case["result"])
    # Argument order does not matter.
    assert fn(b, a, liquidity, case["round_up"]) == int(case["result"])


@pytest.mark.parametrize("case", VECTORS["amount0_up_is_down_plus_one"], ids=lambda c: c["it"])
def test_amount0_delta_for_prices_that_overflow(case: dict[str, Any]) -> None:
    a, b, liquidity = int(case["sqrt_ratio_a"]), int(case["sqrt_ratio_b"]), int(case["liquidity"])
    assert get_amount0_delta(a, b, liquidity, True) == get_amount0_delta(a, b, liquidity, False) + 1


def test_signed_deltas_round_by_sign() -> None:
    a, b = Q96, Q96 * 11 // 10
    up0, down0 = get_amount0_delta(a, b, 10**18, True), get_amount0_delta(a, b, 10**18, False)
    up1, down1 = get_amount1_delta(a, b, 10**18, True), get_amount1_delta(a, b, 10**18, False)
    assert up0 == down0 + 1
    assert up1 == down1 + 1
    assert get_amount0_delta_signed(a, b, 10**18) == up0
    assert get_amount0_delta_signed(a, b, -(10**18)) == -down0
    assert get_amount1_delta_signed(a, b, 10**18) == up1
    assert get_amount1_delta_signed(a, b, -(10**18)) == -down1


def test_amount1_add_overflowing_uint160_reverts() -> None:
    with pytest.raises(MathOverflowError):
        get_next_sqrt_price_from_amount1_rounding_down(MAX_UINT160, 1024, 1024, True)
    # amount above uint160 takes the mulDiv branch.
    big = MAX_UINT160 + 1
    assert get_next_sqrt_price_from_amount1_rounding_down(1, MAX_UINT128, big, True) == 1 + (
        big * Q96 // MAX_UINT128
    )


@settings(max_examples=300, deadline=None)
@given(prices, liquidities, amounts, st.booleans())
def test_input_never_overshoots(price: int, liquidity: int, amount_in: int, zfo: bool) -> None:
    try:
        nxt = get_next_sqrt_price_from_input(price, liquidity, amount_in, zfo)
    except MathError:
        return
    if zfo:
        assert nxt <= price
        if nxt > 0:
            # Reaching nxt costs no more than what was paid in.
            assert get_amount0_delta(nxt, price, liquidity, True) <= amount_in
    else:
        assert nxt >= price
        assert get_amount1_delta(price, nxt, liquidity, True) <= amount_in


@settings(max_examples=300, deadline=None)
@given(prices, liquidities, amounts, st.booleans())
def test_output_is_always_covered(price: int, liquidity: int, amount_out: int, zfo: bool) -> None:
    try:
        nxt = get_next_sqrt_price_from_output(price, liquidity, amount_out, zfo)
    except MathError:
        return
    if zfo:
        assert nxt <= price
        assert get_amount1_delta(nxt, price, liquidity, False) >= amount_out
    else:
        assert nxt >= price
        assert get_amount0_delta(price, nxt, liquidity, False) >= amount_out


@settings(max_examples=300, deadline=None)
@given(prices, prices, st.integers(min_value=0, max_value=MAX_UINT128))
def test_amount_deltas_round_consistently(a: int, b: int, liquidity: int) -> None:
    assume(a != b)
    for fn in (get_amount0_delta, get_amount1_delta):
        up, down = fn(a, b, liquidity, True), fn(a, b, liquidity, False)
        assert down <= up <= down + 1
    lo, hi = min(a, b), max(a, b)
    # amount1 = L * (hi - lo) / 2**96 exactly, before rounding.
    assert get_amount1_delta(a, b, liquidity, False) == liquidity * (hi - lo) // Q96
    # amount0 = L * 2**96 * (hi - lo) / (hi * lo), rounded down through two divisions.
    assert get_amount0_delta(a, b, liquidity, False) <= (liquidity * Q96 * (hi - lo)) // (hi * lo)


@settings(max_examples=200, deadline=None)
@given(prices, liquidities, amounts)
def test_amount0_add_then_remove_never_ends_below_the_start(
    price: int, liquidity: int, amount: int
) -> None:
    # Both directions round the price up, so the round trip cannot end below the start.
    try:
        down = get_next_sqrt_price_from_amount0_rounding_up(price, liquidity, amount, True)
        back = get_next_sqrt_price_from_amount0_rounding_up(down, liquidity, amount, False)
    except MathError:
        return
    assert back >= price
