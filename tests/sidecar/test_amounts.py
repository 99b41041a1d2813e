from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from sidecar.amounts import format_units


def test_the_figures_a_user_reads() -> None:
    assert format_units(1814151225730116379040, 18, "WETH") == "1 814.15 WETH"
    assert format_units(244642464616578405068, 18, "WETH") == "244.64 WETH"
    assert format_units(1_500_000, 6, "USDC") == "1.50 USDC"
    assert format_units(123_456, 18, "WETH") == "0.0000000000001234 WETH"
    assert format_units(0, 18, "WETH") == "0.00 WETH"
    assert format_units(-2_500_000_000_000_000_000, 18) == "-2.50"
    assert format_units(10**30, 0, "X") == "1 000 000 000 000 000 000 000 000 000 000.00 X"


@given(st.integers(-(10**40), 10**40), st.integers(0, 36))
def test_never_more_than_there_is_and_close_to_it(amount: int, decimals: int) -> None:
    text = format_units(amount, decimals)
    with localcontext() as context:
        context.prec = 100
        shown = Decimal(text.replace(" ", ""))
        exact = Decimal(amount).scaleb(-decimals)
        check(shown, exact)


def check(shown: Decimal, exact: Decimal) -> None:
    assert abs(shown) <= abs(exact)  # rounded toward zero
    if abs(exact) >= 1:
        assert abs(exact) - abs(shown) < Decimal("0.01")
    elif exact != 0:
        assert abs(exact) - abs(shown) < abs(exact) * Decimal("0.001")
