"""FullMath against Uniswap v3-core's FullMath.spec.ts and exact rational arithmetic."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathfinder.errors import (
    MathDivisionByZeroError,
    MathError,
    MathOverflowError,
    PathfinderError,
)
from pathfinder.full_math import (
    MAX_UINT128,
    MAX_UINT256,
    add_delta,
    div_rounding_up,
    mul_div,
    mul_div_rounding_up,
)
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("full_math.json")
FUNCTIONS = {"mul_div": mul_div, "mul_div_rounding_up": mul_div_rounding_up}
uint256 = st.integers(min_value=0, max_value=MAX_UINT256)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"{c['fn']}: {c['it']}")
def test_full_math_spec_vectors(case: dict[str, Any]) -> None:
    fn = FUNCTIONS[case["fn"]]
    a, b, d = int(case["a"]), int(case["b"]), int(case["d"])
    if case["result"] is None:
        with pytest.raises(MathError) as info:
            fn(a, b, d)
        assert info.value.operands == (a, b, d)
        expected_kind = MathDivisionByZeroError if d == 0 else MathOverflowError
        assert isinstance(info.value, expected_kind)
    else:
        assert fn(a, b, d) == int(case["result"])


def test_math_error_is_a_pathfinder_error_carrying_operation() -> None:
    with pytest.raises(PathfinderError) as info:
        mul_div(1, 2, 0)
    assert isinstance(info.value, MathError)
    assert info.value.operation == "mul_div"
    assert "mul_div" in str(info.value)


@settings(max_examples=400, deadline=None)
@given(uint256, uint256, uint256)
def test_mul_div_matches_exact_arithmetic(a: int, b: int, d: int) -> None:
    if d == 0:
        for fn in (mul_div, mul_div_rounding_up):
            with pytest.raises(MathDivisionByZeroError):
                fn(a, b, d)
        return
    floor, rem = divmod(a * b, d)
    ceil = floor + (1 if rem else 0)
    if floor > MAX_UINT256:
        with pytest.raises(MathOverflowError):
            mul_div(a, b, d)
    else:
        assert mul_div(a, b, d) == floor
    if ceil > MAX_UINT256:
        with pytest.raises(MathOverflowError):
            mul_div_rounding_up(a, b, d)
    else:
        assert mul_div_rounding_up(a, b, d) == ceil


@settings(max_examples=200, deadline=None)
@given(uint256, st.integers(min_value=1, max_value=MAX_UINT256))
def test_mul_div_near_the_uint256_boundary(a: int, d: int) -> None:
    # b chosen so that a*b/d lands right around 2**256.
    b = ((MAX_UINT256 + 1) * d) // max(a, 1)
    if b > MAX_UINT256:
        return
    exact_floor = a * b // d
    if exact_floor > MAX_UINT256:
        with pytest.raises(MathOverflowError):
            mul_div(a, b, d)
    else:
        assert mul_div(a, b, d) == exact_floor


def test_div_rounding_up_has_evm_zero_division() -> None:
    assert div_rounding_up(7, 2) == 4
    assert div_rounding_up(8, 2) == 4
    assert div_rounding_up(0, 5) == 0
    assert div_rounding_up(5, 0) == 0


def test_add_delta_reverts_like_liquidity_math() -> None:
    assert add_delta(1, 0) == 1
    assert add_delta(1, -1) == 0
    assert add_delta(MAX_UINT128 - 15, 15) == MAX_UINT128
    with pytest.raises(MathOverflowError) as low:
        add_delta(0, -1)
    assert low.value.reason == "LS"
    with pytest.raises(MathOverflowError) as high:
        add_delta(MAX_UINT128 - 14, 15)
    assert high.value.reason == "LA"
