"""The range checks against the contracts' own math: every state a pool can reach passes,
and what no pool can reach is refused with its named violation."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from arena import update_checks as checks
from arena.update_checks import Violation, liquidity_violation, swap_violation, sync_violation
from pathfinder import tick_math

liquidity = st.integers(0, checks.U128_MAX)


def test_the_limits_are_the_contracts() -> None:
    assert checks.MIN_TICK == tick_math.MIN_TICK
    assert checks.MAX_TICK == tick_math.MAX_TICK
    assert checks.MIN_SQRT_RATIO == tick_math.MIN_SQRT_RATIO
    assert checks.MAX_SQRT_RATIO == tick_math.MAX_SQRT_RATIO


@given(st.integers(tick_math.MIN_SQRT_RATIO, tick_math.MAX_SQRT_RATIO - 1), liquidity)
def test_every_price_with_its_own_tick_passes(sqrt: int, liq: int) -> None:
    tick = tick_math.get_tick_at_sqrt_ratio(sqrt)
    assert swap_violation(sqrt, liq, tick) is None


@given(st.integers(tick_math.MIN_TICK + 1, tick_math.MAX_TICK - 1), liquidity)
def test_a_swap_ending_on_a_boundary_going_down_passes_with_one_less(tick: int, liq: int) -> None:
    sqrt = tick_math.get_sqrt_ratio_at_tick(tick)
    assert swap_violation(sqrt, liq, tick) is None
    assert swap_violation(sqrt, liq, tick - 1) is None


@given(
    st.integers(tick_math.MIN_SQRT_RATIO, tick_math.MAX_SQRT_RATIO - 1),
    st.sampled_from([-100, -2, 2, 100]),
)
def test_a_tick_two_or_more_away_is_refused(sqrt: int, offset: int) -> None:
    wrong = tick_math.get_tick_at_sqrt_ratio(sqrt) + offset
    assume(tick_math.MIN_TICK <= wrong <= tick_math.MAX_TICK)
    assert swap_violation(sqrt, 0, wrong) is Violation.TICK_PRICE_MISMATCH


@given(st.integers(tick_math.MIN_TICK + 1, tick_math.MAX_TICK - 1))
def test_one_less_inside_a_range_is_refused(tick: int) -> None:
    low = tick_math.get_sqrt_ratio_at_tick(tick)
    sqrt = (low + tick_math.get_sqrt_ratio_at_tick(tick + 1)) // 2  # mid-range
    assert swap_violation(sqrt, 0, tick) is None
    assert swap_violation(sqrt, 0, tick - 1) is Violation.TICK_PRICE_MISMATCH
    assert swap_violation(sqrt, 0, tick + 1) is Violation.TICK_PRICE_MISMATCH


def test_a_flipped_byte_in_the_price_is_refused() -> None:
    sqrt = tick_math.get_sqrt_ratio_at_tick(-276310) + 12345
    tick = tick_math.get_tick_at_sqrt_ratio(sqrt)
    flipped = sqrt ^ (0xFF << (8 * 30))  # what one bad byte on the wire does
    assert swap_violation(flipped, 10**18, tick) in (
        Violation.SQRT_PRICE_RANGE,
        Violation.TICK_PRICE_MISMATCH,
    )
    assert swap_violation((4.5e74).__int__(), 10**18, tick) is Violation.SQRT_PRICE_RANGE


def test_ranges() -> None:
    ok = tick_math.get_sqrt_ratio_at_tick(0)
    assert swap_violation(tick_math.MIN_SQRT_RATIO - 1, 0, 0) is Violation.SQRT_PRICE_RANGE
    assert swap_violation(tick_math.MAX_SQRT_RATIO, 0, 0) is Violation.SQRT_PRICE_RANGE
    assert swap_violation(ok, 0, tick_math.MAX_TICK + 1) is Violation.TICK_RANGE
    assert swap_violation(ok, checks.U128_MAX + 1, 0) is Violation.LIQUIDITY_RANGE
    assert swap_violation(ok, -1, 0) is Violation.LIQUIDITY_RANGE
    assert sync_violation(checks.U112_MAX, 0) is None
    assert sync_violation(checks.U112_MAX + 1, 0) is Violation.RESERVE_RANGE
    assert sync_violation(0, -1) is Violation.RESERVE_RANGE
    assert liquidity_violation(-60, 60, 10) is None
    assert liquidity_violation(60, 60, 10) is Violation.TICK_ORDER
    assert liquidity_violation(-887273, 60, 10) is Violation.TICK_ORDER
    assert liquidity_violation(-60, 60, 1 << 127) is Violation.LIQUIDITY_DELTA_RANGE


@given(
    st.integers(tick_math.MIN_SQRT_RATIO - 10, tick_math.MAX_SQRT_RATIO + 10),
    st.integers(-1, checks.U128_MAX + 1),
    st.integers(tick_math.MIN_TICK - 2, tick_math.MAX_TICK + 2),
)
def test_a_loaded_slot0_is_checked_for_its_ranges_only(sqrt: int, liq: int, tick: int) -> None:
    """A state file's slot0 passes whatever its tick is against its price, and fails each
    range exactly as a swap does."""
    assume(sqrt > 0)
    ranges = checks.slot0_range_violation(sqrt, liq, tick)
    in_range = (
        tick_math.MIN_SQRT_RATIO <= sqrt < tick_math.MAX_SQRT_RATIO
        and tick_math.MIN_TICK <= tick <= tick_math.MAX_TICK
        and 0 <= liq <= checks.U128_MAX
    )
    assert (ranges is None) == in_range
    if not in_range:
        assert ranges is swap_violation(sqrt, liq, tick)


def test_labels_are_a_fixed_vocabulary() -> None:
    labels = [v.value for v in Violation]
    assert len(set(labels)) == len(labels)
    assert all(label.replace("_", "").isalpha() and label.islower() for label in labels)
