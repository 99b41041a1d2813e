"""The fee policy against its caps, and the replacement rule."""

from __future__ import annotations

from fractions import Fraction

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from executor.fee_policy import (
    BPS,
    FeeCaps,
    FeeQuote,
    FeeRefusal,
    Fees,
    decide_fees,
    in_start_token,
    is_valid_replacement,
    replacement_fees,
    worst_base_fee,
)

GWEI = 10**9

quotes = st.builds(
    FeeQuote,
    base_fee_per_gas=st.integers(0, 2_000 * GWEI),
    gas_limit=st.integers(21_000, 3_000_000),
    profit=st.integers(0, 10**24),
    coinbase_payment=st.integers(0, 10**23),
    start_per_wei=st.fractions(min_value=0, max_value=10**6, max_denominator=10**9),
)
caps = st.builds(
    FeeCaps,
    min_priority_fee_per_gas=st.integers(0, 50 * GWEI),
    priority_share_bps=st.integers(0, BPS),
    max_fee_per_gas=st.integers(1, 5_000 * GWEI),
    max_gas_cost=st.integers(1, 10**19),
    max_coinbase_share_bps=st.integers(0, BPS),
    min_net_profit=st.integers(-(10**18), 10**22),
    target_blocks=st.integers(1, 5),
)


@given(quotes, caps)
def test_a_decision_never_exceeds_a_cap(quote: FeeQuote, limits: FeeCaps) -> None:
    fees = decide_fees(quote, limits)
    if isinstance(fees, FeeRefusal):
        return
    assert fees.max_fee_per_gas <= limits.max_fee_per_gas
    assert fees.worst_gas_cost == quote.gas_limit * fees.max_fee_per_gas
    assert fees.worst_gas_cost <= limits.max_gas_cost
    assert quote.coinbase_payment * BPS <= quote.profit * limits.max_coinbase_share_bps
    assert fees.max_priority_fee_per_gas >= limits.min_priority_fee_per_gas
    # the max fee covers the worst base fee of every block up to the target
    assert fees.max_fee_per_gas == fees.worst_base_fee_per_gas + fees.max_priority_fee_per_gas
    assert fees.worst_base_fee_per_gas == worst_base_fee(
        quote.base_fee_per_gas, limits.target_blocks
    )


@given(quotes, caps)
def test_a_send_leaves_at_least_the_minimum_in_the_worst_case(
    quote: FeeQuote, limits: FeeCaps
) -> None:
    fees = decide_fees(quote, limits)
    if isinstance(fees, Fees):
        cost = in_start_token(fees.worst_gas_cost, quote.start_per_wei)
        assert quote.profit - quote.coinbase_payment - cost == fees.worst_net_profit
        assert fees.worst_net_profit >= limits.min_net_profit


@given(quotes, caps, st.integers(1, 1_000 * GWEI))
def test_a_higher_base_fee_never_turns_a_refusal_into_a_send(
    quote: FeeQuote, limits: FeeCaps, rise: int
) -> None:
    lower = decide_fees(quote, limits)
    higher = decide_fees(
        msgspec.structs.replace(quote, base_fee_per_gas=quote.base_fee_per_gas + rise), limits
    )
    if isinstance(lower, FeeRefusal):
        assert isinstance(higher, FeeRefusal)
    elif isinstance(higher, Fees):
        assert higher.max_fee_per_gas >= lower.worst_base_fee_per_gas
        assert higher.worst_net_profit <= lower.worst_net_profit


@given(quotes, caps, st.integers(0, 10**21))
def test_a_higher_minimum_never_turns_a_refusal_into_a_send(
    quote: FeeQuote, limits: FeeCaps, more: int
) -> None:
    stricter = msgspec.structs.replace(limits, min_net_profit=limits.min_net_profit + more)
    if isinstance(decide_fees(quote, limits), FeeRefusal):
        assert isinstance(decide_fees(quote, stricter), FeeRefusal)


@given(quotes, caps, st.integers(0, 10**22))
def test_without_a_profit_share_more_profit_never_turns_a_send_into_a_refusal(
    quote: FeeQuote, limits: FeeCaps, more: int
) -> None:
    flat = msgspec.structs.replace(limits, priority_share_bps=0)
    richer = msgspec.structs.replace(quote, profit=quote.profit + more)
    if isinstance(decide_fees(quote, flat), Fees):
        assert isinstance(decide_fees(richer, flat), Fees)


@given(quotes, caps)
def test_the_priority_fee_grows_with_its_share(quote: FeeQuote, limits: FeeCaps) -> None:
    none = decide_fees(quote, msgspec.structs.replace(limits, priority_share_bps=0))
    some = decide_fees(quote, limits)
    if isinstance(none, Fees) and isinstance(some, Fees):
        assert some.max_priority_fee_per_gas >= none.max_priority_fee_per_gas


def test_the_worst_base_fee_rises_an_eighth_per_block_rounded_up() -> None:
    assert worst_base_fee(8, 1) == 9
    assert worst_base_fee(8, 2) == 11  # 9 × 9/8 = 10.125 → 11
    assert worst_base_fee(0, 3) == 0
    assert worst_base_fee(1, 1) == 2


def test_a_fee_over_the_cap_is_refused_with_the_numbers() -> None:
    quote = FeeQuote(
        base_fee_per_gas=100 * GWEI,
        gas_limit=200_000,
        profit=10**18,
        coinbase_payment=0,
        start_per_wei=Fraction(1),
    )
    limits = FeeCaps(min_priority_fee_per_gas=GWEI, max_fee_per_gas=100 * GWEI, max_gas_cost=10**18)
    refusal = decide_fees(quote, limits)
    assert isinstance(refusal, FeeRefusal)
    assert refusal.kind == "fee_cap"
    assert str(113 * GWEI + 500_000_000) in refusal.reason  # 100 × 9/8 + 1 gwei


@given(st.integers(0, 10**13), st.integers(0, 10**13))
def test_the_least_replacement_raises_both_fees_by_ten_percent(max_fee: int, tip: int) -> None:
    new_max, new_tip = replacement_fees(max_fee, tip)
    assert new_max * 100 >= max_fee * 110 and new_max > max_fee
    assert new_tip * 100 >= tip * 110 and new_tip > tip
    assert is_valid_replacement(max_fee, tip, new_max, new_tip)
    assert not is_valid_replacement(max_fee, tip, new_max - 1, new_tip)
    assert not is_valid_replacement(max_fee, tip, new_max, new_tip - 1)
    assert not is_valid_replacement(max_fee, tip, max_fee, tip)


def test_a_nine_percent_bump_is_not_a_replacement() -> None:
    assert not is_valid_replacement(100 * GWEI, 2 * GWEI, 109 * GWEI, 3 * GWEI)
    assert is_valid_replacement(100 * GWEI, 2 * GWEI, 110 * GWEI, 2_200_000_000)
