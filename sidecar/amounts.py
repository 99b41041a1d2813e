"""Token amounts for people: `1 814.15 WETH` for 1814151225730116379040 wei of WETH.

Only for reading: every machine output (JSON, JSONL, NATS) keeps the exact integers.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext

_SIGNIFICANT_BELOW_ONE = 4
_PRECISION = 100  # digits: a u256 has 78


def format_units(amount: int, decimals: int, symbol: str | None = None) -> str:
    """`amount` in the token's smallest unit, as token units: two decimals from 1 up,
    four significant digits below 1, digits grouped by thousands with spaces, rounded
    toward zero (a reader never sees more than there is)."""
    with localcontext() as context:
        context.prec = _PRECISION
        value = Decimal(amount).scaleb(-decimals)
        sign = "-" if value < 0 else ""
        value = abs(value)
        if value >= 1 or value == 0:
            shown = value.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        else:
            exponent = value.adjusted() - _SIGNIFICANT_BELOW_ONE + 1
            shown = value.quantize(Decimal(1).scaleb(exponent), rounding=ROUND_DOWN)
    whole, _, fraction = f"{shown:f}".partition(".")
    grouped = f"{int(whole):,}".replace(",", " ")
    text = f"{sign}{grouped}.{fraction}" if fraction else f"{sign}{grouped}"
    return f"{text} {symbol}" if symbol else text
