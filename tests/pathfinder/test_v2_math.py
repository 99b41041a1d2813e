"""V2 math against Uniswap v2-core's UniswapV2Pair.spec.ts swap cases, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pathfinder.errors import (
    InsufficientAmountError,
    InsufficientLiquidityError,
    InvalidInputError,
    MathOverflowError,
)
from pathfinder.full_math import MAX_UINT256
from pathfinder.v2_math import fee_fraction, get_amount_in, get_amount_out, swap_satisfies_k
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("v2_pair_swaps.json")
MAX_UINT112 = (1 << 112) - 1

reserves = st.integers(min_value=1, max_value=MAX_UINT112)
fee_bps = st.sampled_from([0, 1, 5, 25, 30, 100, 9999])


@pytest.mark.parametrize("row", VECTORS["get_input_price"], ids="/".join)
def test_get_input_price_cases(row: list[str]) -> None:
    swap_amount, reserve0, reserve1, expected = (int(v) for v in row)
    assert get_amount_out(swap_amount, reserve0, reserve1) == expected
    # The pair accepts exactly that output and rejects one wei more ("UniswapV2: K").
    assert swap_satisfies_k(
        reserve0,
        reserve1,
        amount0_in=swap_amount,
        amount1_in=0,
        amount0_out=0,
        amount1_out=expected,
    )
    assert not swap_satisfies_k(
        reserve0,
        reserve1,
        amount0_in=swap_amount,
        amount1_in=0,
        amount0_out=0,
        amount1_out=expected + 1,
    )


@pytest.mark.parametrize("row", VECTORS["optimistic"], ids="/".join)
def test_optimistic_cases(row: list[str]) -> None:
    output_amount, reserve0, reserve1, input_amount = (int(v) for v in row)
    # Token0 out, repaid in token0 within the same swap.
    assert swap_satisfies_k(
        reserve0,
        reserve1,
        amount0_in=input_amount,
        amount1_in=0,
        amount0_out=output_amount,
        amount1_out=0,
    )
    assert not swap_satisfies_k(
        reserve0,
        reserve1,
        amount0_in=input_amount,
        amount1_in=0,
        amount0_out=output_amount + 1,
        amount1_out=0,
    )


def test_fee_fraction_reduces_to_the_contract_constants() -> None:
    assert fee_fraction(30) == (997, 1000)
    assert fee_fraction(25) == (399, 400)
    assert fee_fraction(0) == (1, 1)
    for bad in (-1, 10_000):
        with pytest.raises(InvalidInputError):
            fee_fraction(bad)


def test_library_reverts() -> None:
    with pytest.raises(InsufficientAmountError):
        get_amount_out(0, 10, 10)
    with pytest.raises(InsufficientAmountError):
        get_amount_in(0, 10, 10)
    with pytest.raises(InsufficientLiquidityError):
        get_amount_out(1, 0, 10)
    with pytest.raises(InsufficientLiquidityError):
        get_amount_out(1, 10, 0)
    for out in (10, 11):
        with pytest.raises(InsufficientLiquidityError) as info:
            get_amount_in(out, 10, 10)
        assert (info.value.amount, info.value.reserve_out) == (out, 10)
    with pytest.raises(MathOverflowError):
        get_amount_out(MAX_UINT256 // 997 + 1, 10, 10)
    with pytest.raises(MathOverflowError):
        get_amount_out(2**200, 10, 2**60)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_UINT112), reserves, reserves, fee_bps)
def test_amount_out_is_the_largest_output_the_pair_accepts(
    amount_in: int, reserve_in: int, reserve_out: int, fee: int
) -> None:
    out = get_amount_out(amount_in, reserve_in, reserve_out, fee)
    assert 0 <= out < reserve_out
    assert swap_satisfies_k(
        reserve_in,
        reserve_out,
        amount0_in=amount_in,
        amount1_in=0,
        amount0_out=0,
        amount1_out=out,
        fee_bps=fee,
    )
    if out + 1 < reserve_out:
        assert not swap_satisfies_k(
            reserve_in,
            reserve_out,
            amount0_in=amount_in,
            amount1_in=0,
            amount0_out=0,
            amount1_out=out + 1,
            fee_bps=fee,
        )


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_UINT112), reserves, reserves, fee_bps)
def test_amount_in_buys_at_least_the_requested_output(
    amount_out: int, reserve_in: int, reserve_out: int, fee: int
) -> None:
    assume(amount_out < reserve_out)
    amount_in = get_amount_in(amount_out, reserve_in, reserve_out, fee)
    kept, _ = fee_fraction(fee)
    # Buying nearly all of reserve_out needs an input whose getAmountOut product overflows
    # uint256: the pair reverts there too (SafeMath), so there is nothing to compare.
    assume(amount_in * kept * reserve_out <= MAX_UINT256)
    assert get_amount_out(amount_in, reserve_in, reserve_out, fee) >= amount_out
    assert swap_satisfies_k(
        reserve_in,
        reserve_out,
        amount0_in=amount_in,
        amount1_in=0,
        amount0_out=0,
        amount1_out=amount_out,
        fee_bps=fee,
    )


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_UINT112), reserves, reserves, fee_bps)
def test_amount_in_of_an_output_is_within_one_wei_of_the_input_that_produced_it(
    amount_in: int, reserve_in: int, reserve_out: int, fee: int
) -> None:
    out = get_amount_out(amount_in, reserve_in, reserve_out, fee)
    assume(out > 0)
    # The library adds 1 after flooring, so an exact quotient comes back one wei higher.
    assert get_amount_in(out, reserve_in, reserve_out, fee) <= amount_in + 1
