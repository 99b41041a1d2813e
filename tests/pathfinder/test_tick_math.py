"""TickMath against Uniswap v3-core's TickMath.spec.ts and its snapshot."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathfinder.errors import MathDomainError
from pathfinder.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("tick_math.json")
ticks = st.integers(min_value=MIN_TICK, max_value=MAX_TICK)
sqrt_ratios = st.integers(min_value=MIN_SQRT_RATIO, max_value=MAX_SQRT_RATIO - 1)


def test_constants() -> None:
    assert MIN_TICK == -887272
    assert MAX_TICK == -MIN_TICK
    assert get_sqrt_ratio_at_tick(MIN_TICK) == MIN_SQRT_RATIO
    assert get_sqrt_ratio_at_tick(MAX_TICK) == MAX_SQRT_RATIO


@pytest.mark.parametrize(
    "case", VECTORS["get_sqrt_ratio_at_tick"], ids=lambda c: f"tick {c['tick']} ({c['from']})"
)
def test_get_sqrt_ratio_at_tick_vectors(case: dict[str, Any]) -> None:
    assert get_sqrt_ratio_at_tick(case["tick"]) == int(case["sqrt_ratio"])


@pytest.mark.parametrize("case", VECTORS["get_sqrt_ratio_at_tick_reverts"], ids=str)
def test_get_sqrt_ratio_at_tick_reverts(case: dict[str, Any]) -> None:
    with pytest.raises(MathDomainError) as info:
        get_sqrt_ratio_at_tick(case["tick"])
    assert info.value.reason == case["reason"]


@pytest.mark.parametrize(
    "case", VECTORS["get_tick_at_sqrt_ratio"], ids=lambda c: f"ratio {c['sqrt_ratio']}"
)
def test_get_tick_at_sqrt_ratio_vectors(case: dict[str, Any]) -> None:
    ratio = int(case["sqrt_ratio"])
    tick = get_tick_at_sqrt_ratio(ratio)
    assert tick == case["tick"]
    # The spec's other assertion: the ratio lies between the tick and tick + 1.
    assert get_sqrt_ratio_at_tick(tick) <= ratio < get_sqrt_ratio_at_tick(tick + 1)


@pytest.mark.parametrize("case", VECTORS["get_tick_at_sqrt_ratio_reverts"], ids=str)
def test_get_tick_at_sqrt_ratio_reverts(case: dict[str, Any]) -> None:
    with pytest.raises(MathDomainError) as info:
        get_tick_at_sqrt_ratio(int(case["sqrt_ratio"]))
    assert info.value.reason == case["reason"]


@pytest.mark.parametrize("abs_tick", VECTORS["js_precision_ticks"])
def test_at_most_one_hundredth_of_a_bip_off(abs_tick: int) -> None:
    # The spec's decimal.js reference, with Python's decimal at 60 digits.
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        for tick in (-abs_tick, abs_tick):
            reference = (Decimal("1.0001") ** tick).sqrt() * (Decimal(2) ** 96)
            diff = abs(Decimal(get_sqrt_ratio_at_tick(tick)) - reference)
            assert diff / reference < Decimal("0.000001")


@settings(max_examples=300, deadline=None)
@given(ticks)
def test_tick_round_trip(tick: int) -> None:
    ratio = get_sqrt_ratio_at_tick(tick)
    if tick < MAX_TICK:
        assert get_tick_at_sqrt_ratio(ratio) == tick
        assert get_tick_at_sqrt_ratio(get_sqrt_ratio_at_tick(tick + 1) - 1) == tick
    if tick > MIN_TICK:
        assert get_tick_at_sqrt_ratio(ratio - 1) == tick - 1


@settings(max_examples=300, deadline=None)
@given(ticks, ticks)
def test_sqrt_ratio_is_strictly_monotonic(a: int, b: int) -> None:
    if a == b:
        assert get_sqrt_ratio_at_tick(a) == get_sqrt_ratio_at_tick(b)
    else:
        assert (get_sqrt_ratio_at_tick(a) < get_sqrt_ratio_at_tick(b)) == (a < b)


@settings(max_examples=400, deadline=None)
@given(sqrt_ratios)
def test_tick_at_ratio_is_the_greatest_tick_not_above(ratio: int) -> None:
    tick = get_tick_at_sqrt_ratio(ratio)
    assert MIN_TICK <= tick < MAX_TICK
    assert get_sqrt_ratio_at_tick(tick) <= ratio < get_sqrt_ratio_at_tick(tick + 1)
    # Within one tick of the real-valued logarithm (as the spec checks with decimal.js).
    real = math.log((ratio / 2**96) ** 2, 1.0001)
    assert abs(tick - math.floor(real)) <= 1


@settings(max_examples=200, deadline=None)
@given(sqrt_ratios, sqrt_ratios)
def test_tick_at_ratio_is_monotonic(a: int, b: int) -> None:
    if a <= b:
        assert get_tick_at_sqrt_ratio(a) <= get_tick_at_sqrt_ratio(b)
    else:
        assert get_tick_at_sqrt_ratio(a) >= get_tick_at_sqrt_ratio(b)
