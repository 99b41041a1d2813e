"""Curve StableSwap-NG exchange math against the real pool, to the wei, and its laws.

The oracle is tests/data/curve/curve_stableswap_ng.json (see its README): exchanges run
on the real CurveStableSwapNG plain pool on anvil. Every case's `dy` must come out
exactly, every reverted case must be refused, and `A` must equal the pool's
`A_precise()` at the swap's block. Hypothesis checks the invariants of the math.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pathfinder.curve_stableswap import (
    PRECISION,
    CurveRevertError,
    StableSwapPool,
    amp_at,
    exchange,
    get_d,
    get_dy,
    xp_of,
)
from tests.pathfinder.curve_strategies import pegged_pools, pools

VECTORS = Path(__file__).resolve().parents[1] / "data" / "curve" / "curve_stableswap_ng.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text())["cases"]


def pool_of(case: dict[str, Any]) -> StableSwapPool:
    s = case["state"]
    return StableSwapPool(
        balances=tuple(int(b) for b in s["effective_balances"]),
        rates=tuple(int(r) for r in case["rates"]),
        fee=s["fee"],
        offpeg_fee_multiplier=s["offpeg_fee_multiplier"],
        initial_a=s["initial_a"],
        future_a=s["future_a"],
        initial_a_time=s["initial_a_time"],
        future_a_time=s["future_a_time"],
    )


def test_the_vectors_cover_what_they_claim() -> None:
    kinds = {c["kind"] for c in CASES}
    assert len(CASES) == 517
    assert {"static", "edge_tiny", "edge_zero_dx", "edge_huge"} <= kinds
    assert any(k.startswith("ramp_") for k in kinds)
    assert sum(c["revert"] for c in CASES) == 11
    assert {c["n_coins"] for c in CASES} == {2, 3}
    assert any(c["admin_balances"] != ["0"] * c["n_coins"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c['kind']}-{k}" for k, c in enumerate(CASES)])
def test_dy_equals_the_pool_to_the_wei(case: dict[str, Any]) -> None:
    pool = pool_of(case)
    assert [int(r) for r in case["rates"]] == [10 ** (36 - d) for d in case["decimals"]]
    assert amp_at(pool, case["timestamp"]) == case["amp"]
    args = (pool, case["i"], case["j"], int(case["dx"]), case["timestamp"])
    if case["revert"]:
        with pytest.raises(CurveRevertError):
            get_dy(*args)
    else:
        assert get_dy(*args) == int(case["dy"])


def test_effective_balances_are_stored_minus_admin() -> None:
    for case in CASES:
        stored = [int(b) for b in case["stored_balances"]]
        admin = [int(b) for b in case["admin_balances"]]
        effective = [int(b) for b in case["state"]["effective_balances"]]
        assert effective == [s - a for s, a in zip(stored, admin, strict=True)]


# -- properties -------------------------------------------------------------------------
def quote(pool: StableSwapPool, i: int, j: int, dx: int) -> int | None:
    try:
        return get_dy(pool, i, j, dx, 1_800_000_000)
    except CurveRevertError:
        return None


@settings(max_examples=200, deadline=None)
@given(pool=pools(), data=st.data())
def test_dy_is_monotone_in_dx(pool: StableSwapPool, data: st.DataObject) -> None:
    n = len(pool.balances)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 2).map(lambda k: k if k < i else k + 1))
    dx = data.draw(st.integers(1, pool.balances[i]))
    more = dx + data.draw(st.integers(1, pool.balances[i]))
    small, large = quote(pool, i, j, dx), quote(pool, i, j, more)
    assume(small is not None and large is not None)
    assert small is not None and large is not None
    assert large >= small


@settings(max_examples=200, deadline=None)
@given(pool=pools(equal=True), data=st.data())
def test_dy_is_symmetric_at_balance(pool: StableSwapPool, data: st.DataObject) -> None:
    n = len(pool.balances)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 2).map(lambda k: k if k < i else k + 1))
    dx = data.draw(st.integers(1, 2 * pool.balances[i]))
    assert quote(pool, i, j, dx) == quote(pool, j, i, dx)


@settings(max_examples=200, deadline=None)
@given(pool=pools(), data=st.data())
def test_never_more_out_than_the_balance(pool: StableSwapPool, data: st.DataObject) -> None:
    n = len(pool.balances)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 2).map(lambda k: k if k < i else k + 1))
    dx = data.draw(st.integers(1, 10 * pool.balances[i] + 10))
    dy = quote(pool, i, j, dx)
    if dy is not None:
        assert 0 <= dy < pool.balances[j]


@settings(max_examples=200, deadline=None)
@given(pool=pegged_pools(), data=st.data())
def test_d_does_not_fall_after_a_swap_with_fee(pool: StableSwapPool, data: st.DataObject) -> None:
    """The balances after the exchange (admin share removed) keep D at least as large.

    Over pools as deployed (`pegged_pools`): in a pool a billion times off balance, the
    pool's own integer rounding of D and y can outweigh a fee of a few wei."""
    n = len(pool.balances)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 2).map(lambda k: k if k < i else k + 1))
    dx = data.draw(st.integers(1, pool.balances[i]))
    try:
        done = exchange(pool, i, j, dx, 1_800_000_000)
        after = get_d(xp_of(done.balances, pool.rates), pool.future_a)
    except CurveRevertError:  # a pool this imbalanced reverts too: nothing to compare
        assume(False)
        return
    # The LPs' half of the fee must exceed the rounding: one native unit of the coarsest
    # coin in xp, a few times over.
    assume(done.dy_fee >= 4 * max(pool.rates) // PRECISION + 4)
    before = get_d(xp_of(pool.balances, pool.rates), pool.future_a)
    assert after >= before
    assert done.balances[j] == pool.balances[j] - done.dy - done.admin_fee


def test_zero_dx_and_bad_indices_are_refused() -> None:
    pool = pool_of(CASES[0])
    for i, j, dx in ((0, 1, 0), (0, 0, 10), (0, 5, 10), (-1, 0, 10)):
        with pytest.raises(CurveRevertError):
            get_dy(pool, i, j, dx, CASES[0]["timestamp"])
