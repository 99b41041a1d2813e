"""The V3 swap loop against UniswapV3Pool.swaps.spec.ts's snapshot, plus pool invariants."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pathfinder import v3_swap
from pathfinder.errors import IncompleteSwapError, InvalidInputError
from pathfinder.sqrt_price_math import get_amount0_delta_signed, get_amount1_delta_signed
from pathfinder.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from pathfinder.tick_table import TickTable
from pathfinder.v3_swap import (
    SwapResult,
    V3SwapState,
    quote_exact_input,
    quote_exact_output,
    swap,
)
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("v3_pool_swaps.json")
Position = tuple[int, int, int]  # tick_lower, tick_upper, liquidity


def position_amounts(positions: list[Position], sqrt_price: int, sign: int) -> tuple[int, int]:
    """Token amounts UniswapV3Pool._modifyPosition moves for +L (sign 1) or -L (sign -1)."""
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    total0 = total1 = 0
    for lower, upper, liquidity in positions:
        sqrt_lower, sqrt_upper = get_sqrt_ratio_at_tick(lower), get_sqrt_ratio_at_tick(upper)
        delta = sign * liquidity
        if tick < lower:
            total0 += get_amount0_delta_signed(sqrt_lower, sqrt_upper, delta)
        elif tick < upper:
            total0 += get_amount0_delta_signed(sqrt_price, sqrt_upper, delta)
            total1 += get_amount1_delta_signed(sqrt_lower, sqrt_price, delta)
        else:
            total1 += get_amount1_delta_signed(sqrt_lower, sqrt_upper, delta)
    return total0, total1


def active_liquidity(positions: list[Position], tick: int) -> int:
    return sum(liq for lower, upper, liq in positions if lower <= tick < upper)


def build_pool(
    positions: list[Position], sqrt_price: int, fee: int, spacing: int
) -> tuple[V3SwapState, TickTable]:
    net_gross: dict[int, tuple[int, int]] = {}
    for lower, upper, liquidity in positions:
        for tick, net in ((lower, liquidity), (upper, -liquidity)):
            old_net, old_gross = net_gross.get(tick, (0, 0))
            net_gross[tick] = (old_net + net, old_gross + liquidity)
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    state = V3SwapState(
        sqrt_price_x96=sqrt_price,
        tick=tick,
        liquidity=active_liquidity(positions, tick),
        fee_pips=fee,
        tick_spacing=spacing,
    )
    return state, TickTable.from_net_gross(net_gross, spacing)


def _round_half_up(value: Fraction, digits: int) -> tuple[int, int]:
    """(mantissa with `digits` digits, decimal exponent) of a positive rational."""
    exponent = len(str(value.numerator)) - len(str(value.denominator))
    if value < Fraction(10) ** exponent:
        exponent -= 1
    scaled = value / Fraction(10) ** (exponent - digits + 1)
    mantissa = int(scaled + Fraction(1, 2))
    if mantissa == 10**digits:
        mantissa, exponent = 10 ** (digits - 1), exponent + 1
    return mantissa, exponent


def format_price(sqrt_price: int) -> str:
    """test/shared/format.ts formatPrice: decimal.js (20 digits, half-up) then toPrecision(5)."""
    root_m, root_e = _round_half_up(Fraction(sqrt_price, 2**96), 20)
    root = Fraction(root_m) * Fraction(10) ** (root_e - 19)
    price_m, price_e = _round_half_up(root * root, 20)
    mantissa, exponent = _round_half_up(Fraction(price_m) * Fraction(10) ** (price_e - 19), 5)
    digits = str(mantissa)
    if exponent >= 5:
        return f"{digits[0]}.{digits[1:]}e+{exponent}"
    if exponent >= 0:
        return f"{digits[: exponent + 1]}.{digits[exponent + 1 :]}".rstrip(".")
    return "0." + "0" * (-exponent - 1) + digits


def pool_positions(pool: dict[str, Any]) -> list[Position]:
    return [(p["tick_lower"], p["tick_upper"], int(p["liquidity"])) for p in pool["positions"]]


SWAP_CASES = [
    pytest.param(pool, case, id=f"{pool['description']} | {case['it']}")
    for pool in VECTORS["pools"]
    for case in pool["swaps"]
]


@pytest.mark.parametrize("pool", VECTORS["pools"], ids=lambda p: p["description"])
def test_pool_setup_matches_the_snapshot(pool: dict[str, Any]) -> None:
    positions = pool_positions(pool)
    price = int(pool["starting_sqrt_price_x96"])
    state, _ = build_pool(positions, price, pool["fee"], pool["tick_spacing"])
    balances = position_amounts(positions, price, 1)
    for case in pool["swaps"]:
        expected = case["expected"]
        assert state.tick == expected["tick_before"]
        assert balances == (int(expected["amount0_before"]), int(expected["amount1_before"]))
        assert format_price(price) == expected["pool_price_before"]


@pytest.mark.parametrize(("pool", "case"), SWAP_CASES)
def test_pool_swap_snapshot(pool: dict[str, Any], case: dict[str, Any]) -> None:
    positions = pool_positions(pool)
    price = int(pool["starting_sqrt_price_x96"])
    state, ticks = build_pool(positions, price, pool["fee"], pool["tick_spacing"])
    amount, limit = int(case["amount_specified"]), int(case["sqrt_price_limit_x96"])
    if "error" in case:
        with pytest.raises(InvalidInputError) as info:
            swap(state, ticks, case["zero_for_one"], amount, limit)
        assert info.value.reason == case["error"]
        return
    result = swap(state, ticks, case["zero_for_one"], amount, limit)
    expected = case["expected"]
    assert result.amount0 == int(expected["amount0_delta"])
    assert result.amount1 == int(expected["amount1_delta"])
    assert result.tick == expected["tick_after"]
    assert format_price(result.sqrt_price_x96) == expected["pool_price_after"]
    assert result.liquidity == active_liquidity(positions, result.tick)


def test_default_limits_are_the_widest_the_pool_accepts() -> None:
    pool = VECTORS["pools"][1]
    state, ticks = build_pool(pool_positions(pool), int(pool["starting_sqrt_price_x96"]), 3000, 60)
    assert swap(state, ticks, True, 10**18) == swap(state, ticks, True, 10**18, MIN_SQRT_RATIO + 1)
    assert swap(state, ticks, False, -(10**18)) == swap(
        state, ticks, False, -(10**18), MAX_SQRT_RATIO - 1
    )
    with pytest.raises(InvalidInputError) as info:
        swap(state, ticks, True, 0)
    assert info.value.reason == "AS"
    with pytest.raises(InvalidInputError):
        swap(state, TickTable(10), True, 1)


def test_quotes_agree_with_swap_and_refuse_partial_fills() -> None:
    pool = VECTORS["pools"][1]
    state, ticks = build_pool(pool_positions(pool), int(pool["starting_sqrt_price_x96"]), 3000, 60)
    result = swap(state, ticks, True, 10**18)
    assert quote_exact_input(state, ticks, True, 10**18) == -result.amount1
    result = swap(state, ticks, False, -(10**18))
    assert quote_exact_output(state, ticks, False, 10**18) == result.amount1
    # Token0-only liquidity: there is no token1 to buy.
    only0 = next(p for p in VECTORS["pools"] if p["description"].endswith("token0 liquidity only"))
    state0, ticks0 = build_pool(
        pool_positions(only0), int(only0["starting_sqrt_price_x96"]), 3000, 60
    )
    with pytest.raises(IncompleteSwapError) as info:
        quote_exact_output(state0, ticks0, True, 10**18)
    assert (info.value.requested, info.value.filled) == (10**18, 0)
    limit = get_sqrt_ratio_at_tick(-600)
    assert quote_exact_output(state0, ticks0, True, 10**18, limit) == 0


# --------------------------------------------------------------------------- properties
FEE_SPACINGS = [(100, 1), (500, 10), (3000, 60), (10000, 200)]


@st.composite
def pools(draw: st.DrawFn) -> tuple[list[Position], int, int, int]:
    fee, spacing = draw(st.sampled_from(FEE_SPACINGS))
    lo, hi = -(MAX_TICK // spacing), MAX_TICK // spacing
    near = st.integers(min_value=max(lo, -300), max_value=min(hi, 300))
    bound = near | st.sampled_from([lo, hi])
    positions = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        a, b = draw(bound), draw(bound)
        assume(a != b)
        liquidity = draw(st.integers(min_value=1, max_value=2**100))
        positions.append((min(a, b) * spacing, max(a, b) * spacing, liquidity))
    base = draw(st.integers(min_value=-330 * spacing, max_value=330 * spacing))
    base = max(MIN_TICK, min(MAX_TICK - 1, base))
    low_price, high_price = get_sqrt_ratio_at_tick(base), get_sqrt_ratio_at_tick(base + 1)
    price = draw(st.sampled_from([low_price]) | st.integers(low_price, high_price - 1))
    return positions, price, fee, spacing


amounts = st.integers(min_value=1, max_value=10**30).flatmap(lambda a: st.sampled_from([a, -a]))


def pool_after(state: V3SwapState, result: SwapResult) -> V3SwapState:
    return V3SwapState(
        sqrt_price_x96=result.sqrt_price_x96,
        tick=result.tick,
        liquidity=result.liquidity,
        fee_pips=state.fee_pips,
        tick_spacing=state.tick_spacing,
    )


@settings(max_examples=250, deadline=None)
@given(pools(), st.booleans(), amounts)
def test_swap_invariants(
    pool: tuple[list[Position], int, int, int], zero_for_one: bool, amount: int
) -> None:
    positions, price, fee, spacing = pool
    state, ticks = build_pool(positions, price, fee, spacing)
    assume(price > MIN_SQRT_RATIO + 1 if zero_for_one else price < MAX_SQRT_RATIO - 1)
    result = swap(state, ticks, zero_for_one, amount)

    # Amounts have the pool's signs and never exceed what was specified.
    token_in, token_out = (
        (result.amount0, result.amount1) if zero_for_one else (result.amount1, result.amount0)
    )
    assert token_in >= 0 >= token_out
    if amount > 0:
        assert token_in <= amount
    else:
        assert -token_out <= -amount
    # Price moved the right way; tick and liquidity are those of the final price.
    moved = result.sqrt_price_x96 - price
    assert (moved <= 0) if zero_for_one else (moved >= 0)
    tick = get_tick_at_sqrt_ratio(result.sqrt_price_x96)
    on_boundary = result.sqrt_price_x96 == get_sqrt_ratio_at_tick(result.tick + 1)
    assert result.tick == tick or (zero_for_one and result.tick == tick - 1 and on_boundary)
    assert result.liquidity == active_liquidity(positions, result.tick)

    # Conservation: what the pool holds after the swap still pays every position out at the
    # new price (Uniswap's "check can burn positions"); the surplus is fees and rounding.
    minted0, minted1 = position_amounts(positions, price, 1)
    burned0, burned1 = position_amounts(positions, result.sqrt_price_x96, -1)
    assert minted0 + result.amount0 + burned0 >= 0
    assert minted1 + result.amount1 + burned1 >= 0


@settings(max_examples=150, deadline=None)
@given(pools(), st.booleans(), st.integers(min_value=1, max_value=10**30))
def test_swapping_back_never_returns_more(
    pool: tuple[list[Position], int, int, int], zero_for_one: bool, amount_in: int
) -> None:
    positions, price, fee, spacing = pool
    state, ticks = build_pool(positions, price, fee, spacing)
    assume(price > MIN_SQRT_RATIO + 1 if zero_for_one else price < MAX_SQRT_RATIO - 1)
    first = swap(state, ticks, zero_for_one, amount_in)
    spent = first.amount0 if zero_for_one else first.amount1
    received = -(first.amount1 if zero_for_one else first.amount0)
    after = pool_after(state, first)
    limit_ok = (
        after.sqrt_price_x96 < MAX_SQRT_RATIO - 1
        if zero_for_one
        else (after.sqrt_price_x96 > MIN_SQRT_RATIO + 1)
    )
    assume(received > 0 and limit_ok)
    back = swap(after, ticks, not zero_for_one, received)
    returned = -(back.amount1 if not zero_for_one else back.amount0)
    assert returned <= spent


@settings(max_examples=300, deadline=None)
@given(pools(), st.booleans(), amounts, st.booleans(), st.data())
def test_quotes_skip_only_the_final_tick_and_equal_the_swaps_amounts(
    pool: tuple[list[Position], int, int, int],
    zero_for_one: bool,
    amount: int,
    limited: bool,
    data: st.DataObject,
) -> None:
    """A quote runs the swap loop without the final tick lookup: its amounts equal the
    full swap's, with and without a price limit, and a quote that fills equals the
    swap's output (or input) to the unit."""
    positions, price, fee, spacing = pool
    state, ticks = build_pool(positions, price, fee, spacing)
    assume(price > MIN_SQRT_RATIO + 1 if zero_for_one else price < MAX_SQRT_RATIO - 1)
    limit = None
    if limited:
        low, high = (
            (MIN_SQRT_RATIO + 1, price - 1) if zero_for_one else (price + 1, MAX_SQRT_RATIO - 1)
        )
        assume(low <= high)
        limit = data.draw(st.integers(low, high))
    full = swap(state, ticks, zero_for_one, amount, limit)
    quoted = v3_swap._checked(state, ticks, zero_for_one, amount, limit, final_tick=False)
    assert (quoted.amount0, quoted.amount1, quoted.sqrt_price_x96, quoted.liquidity) == (
        full.amount0,
        full.amount1,
        full.sqrt_price_x96,
        full.liquidity,
    )
    assert quoted.ticks_crossed == full.ticks_crossed
    spent, got = (full.amount0, -full.amount1) if zero_for_one else (full.amount1, -full.amount0)
    if amount > 0 and (limit is not None or spent == amount):
        assert quote_exact_input(state, ticks, zero_for_one, amount, limit) == got
    if amount < 0 and (limit is not None or got == -amount):
        assert quote_exact_output(state, ticks, zero_for_one, -amount, limit) == spent
