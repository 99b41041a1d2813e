"""Pins the public API of the exact-math modules that other packages call."""

from __future__ import annotations

import importlib
import inspect

import pytest

API: dict[str, dict[str, str | None]] = {
    "pathfinder.full_math": {
        "mul_div": "(a: 'int', b: 'int', denominator: 'int') -> 'int'",
        "mul_div_rounding_up": "(a: 'int', b: 'int', denominator: 'int') -> 'int'",
        "div_rounding_up": "(x: 'int', y: 'int') -> 'int'",
        "add_delta": "(liquidity: 'int', delta: 'int') -> 'int'",
        "Q96": None,
        "Q128": None,
        "MAX_UINT128": None,
        "MAX_UINT160": None,
        "MAX_UINT256": None,
        "MAX_INT128": None,
        "MAX_INT256": None,
    },
    "pathfinder.tick_math": {
        "get_sqrt_ratio_at_tick": "(tick: 'int') -> 'int'",
        "get_tick_at_sqrt_ratio": "(sqrt_price_x96: 'int') -> 'int'",
        "MIN_TICK": None,
        "MAX_TICK": None,
        "MIN_SQRT_RATIO": None,
        "MAX_SQRT_RATIO": None,
    },
    "pathfinder.sqrt_price_math": {
        "get_next_sqrt_price_from_amount0_rounding_up": (
            "(sqrt_price_x96: 'int', liquidity: 'int', amount: 'int', add: 'bool') -> 'int'"
        ),
        "get_next_sqrt_price_from_amount1_rounding_down": (
            "(sqrt_price_x96: 'int', liquidity: 'int', amount: 'int', add: 'bool') -> 'int'"
        ),
        "get_next_sqrt_price_from_input": (
            "(sqrt_price_x96: 'int', liquidity: 'int', amount_in: 'int', zero_for_one: 'bool')"
            " -> 'int'"
        ),
        "get_next_sqrt_price_from_output": (
            "(sqrt_price_x96: 'int', liquidity: 'int', amount_out: 'int', zero_for_one: 'bool')"
            " -> 'int'"
        ),
        "get_amount0_delta": (
            "(sqrt_ratio_a_x96: 'int', sqrt_ratio_b_x96: 'int', liquidity: 'int',"
            " round_up: 'bool') -> 'int'"
        ),
        "get_amount1_delta": (
            "(sqrt_ratio_a_x96: 'int', sqrt_ratio_b_x96: 'int', liquidity: 'int',"
            " round_up: 'bool') -> 'int'"
        ),
        "get_amount0_delta_signed": (
            "(sqrt_ratio_a_x96: 'int', sqrt_ratio_b_x96: 'int', liquidity: 'int') -> 'int'"
        ),
        "get_amount1_delta_signed": (
            "(sqrt_ratio_a_x96: 'int', sqrt_ratio_b_x96: 'int', liquidity: 'int') -> 'int'"
        ),
    },
    "pathfinder.swap_math": {
        "compute_swap_step": (
            "(sqrt_ratio_current: 'int', sqrt_ratio_target: 'int', liquidity: 'int',"
            " amount_remaining: 'int', fee_pips: 'int') -> 'tuple[int, int, int, int]'"
        ),
    },
    "pathfinder.v2_math": {
        "get_amount_out": (
            "(amount_in: 'int', reserve_in: 'int', reserve_out: 'int', fee_bps: 'int' = 30)"
            " -> 'int'"
        ),
        "get_amount_in": (
            "(amount_out: 'int', reserve_in: 'int', reserve_out: 'int', fee_bps: 'int' = 30)"
            " -> 'int'"
        ),
        "swap_satisfies_k": (
            "(reserve0: 'int', reserve1: 'int', *, amount0_in: 'int', amount1_in: 'int',"
            " amount0_out: 'int', amount1_out: 'int', fee_bps: 'int' = 30) -> 'bool'"
        ),
        "fee_fraction": None,
    },
    "pathfinder.tick_table": {"TickTable": None},
    "pathfinder.v3_swap": {
        "swap": (
            "(state: 'V3SwapState', ticks: 'TickTable', zero_for_one: 'bool',"
            " amount_specified: 'int', sqrt_price_limit_x96: 'int | None' = None)"
            " -> 'SwapResult'"
        ),
        "quote_exact_input": (
            "(state: 'V3SwapState', ticks: 'TickTable', zero_for_one: 'bool',"
            " amount_in: 'int', sqrt_price_limit_x96: 'int | None' = None) -> 'int'"
        ),
        "quote_exact_output": (
            "(state: 'V3SwapState', ticks: 'TickTable', zero_for_one: 'bool',"
            " amount_out: 'int', sqrt_price_limit_x96: 'int | None' = None) -> 'int'"
        ),
        "V3SwapState": None,
        "SwapResult": None,
    },
}


@pytest.mark.parametrize("module_name", sorted(API))
def test_module_exports_and_signatures(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(API[module_name])
    for name, signature in API[module_name].items():
        obj = getattr(module, name)
        if signature is not None:
            assert str(inspect.signature(obj)) == signature, name


def test_tick_table_methods() -> None:
    from pathfinder.tick_table import TickTable

    assert str(inspect.signature(TickTable.next_initialized_tick_within_one_word)) == (
        "(self, tick: 'int', lte: 'bool') -> 'tuple[int, bool]'"
    )
    assert str(inspect.signature(TickTable.update)) == (
        "(self, tick: 'int', liquidity_net: 'int') -> 'None'"
    )
    assert str(inspect.signature(TickTable.from_net)) == (
        "(liquidity_net: 'Mapping[int, int]', tick_spacing: 'int') -> 'TickTable'"
    )


def test_swap_structs_fields() -> None:
    from pathfinder.v3_swap import SwapResult, V3SwapState

    assert V3SwapState.__struct_fields__ == (
        "sqrt_price_x96",
        "tick",
        "liquidity",
        "fee_pips",
        "tick_spacing",
    )
    assert SwapResult.__struct_fields__ == (
        "amount0",
        "amount1",
        "sqrt_price_x96",
        "tick",
        "liquidity",
        "ticks_crossed",
    )
