"""Balancer weighted math: the invariants a weighted pool's quote must keep.

The exact values are proven against the real Vault on anvil
(tests/chain/test_balancer_chain.py); these properties cover the input space.
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pathfinder import balancer_fixed_point as fp
from pathfinder.balancer_fixed_point import ONE, PowRule, log_exp_pow
from pathfinder.balancer_weighted import (
    MAX_IN_RATIO,
    WeightedPoolMath,
    WeightedPoolVersion,
    calc_out_given_in,
    scaling_factor_for_decimals,
)
from pathfinder.errors import MathDomainError

getcontext().prec = 60

versions = st.sampled_from(list(WeightedPoolVersion))
decimals = st.sampled_from([6, 8, 18])


@st.composite
def pools(draw: st.DrawFn) -> tuple[WeightedPoolMath, tuple[int, ...]]:
    """A 2..4-token pool: weights from 1 % summing to 1e18, balances 1e3..1e30 raw."""
    n = draw(st.integers(2, 4))
    cuts = sorted(draw(st.lists(st.integers(1, 98), min_size=n - 1, max_size=n - 1, unique=True)))
    percents = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    assume(all(p >= 1 for p in percents))
    weights = tuple(p * 10**16 for p in percents)
    math = WeightedPoolMath(
        version=draw(versions),
        weights=weights,
        scaling_factors=tuple(scaling_factor_for_decimals(draw(decimals)) for _ in range(n)),
        swap_fee=draw(st.integers(10**12, 10**17)),
    )
    balances = tuple(draw(st.integers(10**3, 10**30)) for _ in range(n))
    return math, balances


def _max_in(math: WeightedPoolMath, balances: tuple[int, ...], i: int) -> int:
    """A raw amount whose upscaled net-of-fee value is within the 30 % in-ratio."""
    return balances[i] * 29 // 100


@settings(max_examples=300, deadline=None)
@given(pool=pools(), data=st.data())
def test_output_is_below_the_balance_and_monotone_in_amount_in(
    pool: tuple[WeightedPoolMath, tuple[int, ...]], data: st.DataObject
) -> None:
    math, balances = pool
    i, j = data.draw(st.permutations(range(len(balances))))[:2]
    top = _max_in(math, balances, i)
    assume(top >= 2)
    a = data.draw(st.integers(1, top - 1))
    b = data.draw(st.integers(a + 1, top))
    out_a, out_b = math.amount_out(balances, i, j, a), math.amount_out(balances, i, j, b)
    assert 0 <= out_a <= out_b < balances[j]


@settings(max_examples=300, deadline=None)
@given(pool=pools(), data=st.data())
def test_ratio_limits_are_enforced(
    pool: tuple[WeightedPoolMath, tuple[int, ...]], data: st.DataObject
) -> None:
    math, balances = pool
    i, j = data.draw(st.permutations(range(len(balances))))[:2]
    # more than 30 % of the balance in, after the fee, is refused ("BAL#304")
    over = balances[i] * 31 // 100 + data.draw(st.integers(0, balances[i]))
    fee_free = fp.sub(over, fp.mul_up(over, math.swap_fee))
    assume(fee_free * 100 > balances[i] * 30 + 100)
    with pytest.raises(MathDomainError) as refused:
        math.amount_out(balances, i, j, over)
    assert refused.value.reason == "BAL#304"
    # more than 30 % of the balance out is refused ("BAL#305")
    out = balances[j] * 31 // 100 + data.draw(st.integers(0, balances[j] // 2))
    with pytest.raises(MathDomainError) as refused_out:
        math.amount_in(balances, i, j, out)
    assert refused_out.value.reason == "BAL#305"


@settings(max_examples=300, deadline=None)
@given(pool=pools(), data=st.data())
def test_a_round_trip_is_never_profitable(
    pool: tuple[WeightedPoolMath, tuple[int, ...]], data: st.DataObject
) -> None:
    math, balances = pool
    i, j = data.draw(st.permutations(range(len(balances))))[:2]
    top = _max_in(math, balances, i)
    assume(top >= 1)
    amount = data.draw(st.integers(1, top))
    out = math.amount_out(balances, i, j, amount)
    assume(out > 0)
    after = list(balances)
    after[i] += amount
    after[j] -= out
    try:
        back = math.amount_out(tuple(after), j, i, out)
    except MathDomainError:  # the way back may exceed the 30 % limit: nothing comes back
        return
    assert back <= amount


@settings(max_examples=500, deadline=None)
@given(
    x=st.integers(10**14, 10**22),
    y=st.integers(10**16, 99 * 10**18),
)
def test_log_exp_pow_is_within_its_error_bound(x: int, y: int) -> None:
    """LogExpMath.pow against 60-digit decimal arithmetic; powUp/powDown bracket it.

    Outside the contract's domain (ln(x)·y below -41 or above 130) it refuses with BAL#008,
    whatever the size of the result; a hair's width around each bound is left out because
    the contract's own fixed-point ln decides there."""
    ln_x_times_y = (Decimal(x) / ONE).ln() * (Decimal(y) / ONE)
    margin = Decimal("1e-9")
    if not -41 - margin < ln_x_times_y < 130 + margin:
        with pytest.raises(MathDomainError, match="BAL#008"):
            log_exp_pow(x, y)
        return
    assume(-41 + margin < ln_x_times_y < 130 - margin)
    exact = (Decimal(x) / ONE) ** (Decimal(y) / ONE) * ONE
    assume(Decimal(10**-18) * ONE < exact < Decimal(10**38))
    raw = log_exp_pow(x, y)
    assert abs(Decimal(raw) - exact) <= exact * Decimal("1e-14") + 2
    for rule in PowRule:
        assert fp.pow_down(x, y, rule) <= exact <= fp.pow_up(x, y, rule) or y in (
            ONE,
            2 * ONE,
            4 * ONE,
        )


@given(
    balance_in=st.integers(10**18, 10**36),
    weight_in=st.integers(10**16, 98 * 10**16),
    version=versions,
)
def test_equal_weights_never_pay_more_than_a_constant_product(
    balance_in: int, weight_in: int, version: WeightedPoolVersion
) -> None:
    """Exponent exactly 1 (the later generation skips LogExpMath, the first does not):
    both pay at most the fee-free constant-product output."""
    amount = fp.mul_down(balance_in, MAX_IN_RATIO) // 3
    out = calc_out_given_in(
        balance_in, weight_in, balance_in, weight_in, amount, rule=version.pow_rule
    )
    assert out <= balance_in * amount // (balance_in + amount)
