"""UniswapV3Pool.swap's loop over a TickTable, wei-exact, without touching any state.

V4 pools are priced with the same loop (fee in pips, tick spacing from the whitelist) but
with V3's conventions: a positive amount_specified is exact input and results are the
pool's deltas (tests/chain/test_v4_quotes.py checks it against the real PoolManager).
Which V4 pools this may price is `pathfinder.v4_eligibility`'s decision.
"""

from __future__ import annotations

from typing import Final, final

import msgspec

from pathfinder.errors import IncompleteSwapError, InvalidInputError
from pathfinder.full_math import add_delta
from pathfinder.swap_math import compute_swap_step
from pathfinder.tick_math import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    get_sqrt_ratio_at_tick,
    get_tick_at_sqrt_ratio,
)
from pathfinder.tick_table import TickTable

__all__ = [
    "V3SwapState",
    "SwapResult",
    "swap",
    "quote_exact_input",
    "quote_exact_output",
]

_MAX_FEE_PIPS: Final = 1_000_000


@final
class V3SwapState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The part of a V3/V4 pool a swap reads: slot0 price and tick, active liquidity, fee."""

    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee_pips: int
    tick_spacing: int


@final
class SwapResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Signed pool deltas (positive: the pool receives) and the pool state after the swap."""

    amount0: int
    amount1: int
    sqrt_price_x96: int
    tick: int
    liquidity: int
    ticks_crossed: int


def _check_swap_inputs(
    state: V3SwapState, ticks: TickTable, zero_for_one: bool, amount_specified: int, limit: int
) -> None:
    if amount_specified == 0:
        raise InvalidInputError("amount_specified", amount_specified, "AS")
    price = state.sqrt_price_x96
    if not (MIN_SQRT_RATIO < limit < price if zero_for_one else price < limit < MAX_SQRT_RATIO):
        raise InvalidInputError("sqrt_price_limit_x96", limit, "SPL")
    if ticks.tick_spacing != state.tick_spacing:
        raise InvalidInputError("tick_spacing", (state.tick_spacing, ticks.tick_spacing))
    if not 0 <= state.fee_pips < _MAX_FEE_PIPS:
        raise InvalidInputError("fee_pips", state.fee_pips)


def swap(
    state: V3SwapState,
    ticks: TickTable,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None = None,
) -> SwapResult:
    """Simulate UniswapV3Pool.swap: amount_specified > 0 is exact input, < 0 exact output.

    Without a limit the pool's widest ones are used (MIN_SQRT_RATIO + 1 for zero-for-one,
    MAX_SQRT_RATIO - 1 otherwise). Raises InvalidInputError("AS"/"SPL") where the pool
    reverts with those reasons, and MathError where its math reverts.
    """
    return _checked(state, ticks, zero_for_one, amount_specified, sqrt_price_limit_x96)


def _checked(
    state: V3SwapState,
    ticks: TickTable,
    zero_for_one: bool,
    amount_specified: int,
    sqrt_price_limit_x96: int | None,
    *,
    final_tick: bool = True,
) -> SwapResult:
    if sqrt_price_limit_x96 is None:
        limit = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    else:
        limit = sqrt_price_limit_x96
    _check_swap_inputs(state, ticks, zero_for_one, amount_specified, limit)
    return _simulate(state, ticks, zero_for_one, amount_specified, limit, final_tick=final_tick)


def _simulate(
    state: V3SwapState,
    ticks: TickTable,
    zero_for_one: bool,
    amount_specified: int,
    limit: int,
    *,
    final_tick: bool = True,
) -> SwapResult:
    """`final_tick` False (a quote: only the amounts are read): the tick of a price left
    between two ticks is computed only if the loop goes on from it — after such a step
    it never does (the step took all that remained, or stopped at the limit), so the
    result's `tick` may then be the one before the last step; everything else is equal."""
    # Kept as one flat loop over locals: this is the hot path of every exact quote.
    exact_input = amount_specified > 0
    remaining = amount_specified
    calculated = 0
    sqrt_price = state.sqrt_price_x96
    tick = state.tick
    liquidity = state.liquidity
    fee_pips = state.fee_pips
    crossed = 0
    next_tick = ticks.next_initialized_tick_within_one_word
    net_of = ticks.liquidity_net

    while remaining != 0 and sqrt_price != limit:
        step_start = sqrt_price
        tick_next, initialized = next_tick(tick, zero_for_one)
        # The bitmap knows nothing of the tick bounds.
        if tick_next < MIN_TICK:
            tick_next = MIN_TICK
        elif tick_next > MAX_TICK:
            tick_next = MAX_TICK
        sqrt_next = get_sqrt_ratio_at_tick(tick_next)
        if zero_for_one:
            target = limit if sqrt_next < limit else sqrt_next
        else:
            target = limit if sqrt_next > limit else sqrt_next

        sqrt_price, amount_in, amount_out, fee_amount = compute_swap_step(
            sqrt_price, target, liquidity, remaining, fee_pips
        )
        if exact_input:
            remaining -= amount_in + fee_amount
            calculated -= amount_out
        else:
            remaining += amount_out
            calculated += amount_in + fee_amount

        if sqrt_price == sqrt_next:
            if initialized:
                net = net_of(tick_next)
                liquidity = add_delta(liquidity, -net if zero_for_one else net)
                crossed += 1
            # Moving down, the pool sits just below the crossed tick.
            tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_price != step_start and (final_tick or (remaining != 0 and sqrt_price != limit)):
            # Not on a boundary: recompute, unless nothing moved (then a tick already
            # decremented on a lower boundary must stay as it is).
            tick = get_tick_at_sqrt_ratio(sqrt_price)

    if zero_for_one == exact_input:
        amount0, amount1 = amount_specified - remaining, calculated
    else:
        amount0, amount1 = calculated, amount_specified - remaining
    return SwapResult(
        amount0=amount0,
        amount1=amount1,
        sqrt_price_x96=sqrt_price,
        tick=tick,
        liquidity=liquidity,
        ticks_crossed=crossed,
    )


def quote_exact_input(
    state: V3SwapState,
    ticks: TickTable,
    zero_for_one: bool,
    amount_in: int,
    sqrt_price_limit_x96: int | None = None,
) -> int:
    """Amount out (positive) for exactly `amount_in` in.

    Without a price limit, an input the pool cannot absorb entirely raises
    IncompleteSwapError; with a limit the partial result's output is returned (use
    :func:`swap` to see how much input that consumed).
    """
    if amount_in <= 0:
        raise InvalidInputError("amount_in", amount_in)
    # a quote reads only the amounts: no final tick lookup
    result = _checked(state, ticks, zero_for_one, amount_in, sqrt_price_limit_x96, final_tick=False)
    spent = result.amount0 if zero_for_one else result.amount1
    if sqrt_price_limit_x96 is None and spent != amount_in:
        raise IncompleteSwapError("quote_exact_input", amount_in, spent)
    return -(result.amount1 if zero_for_one else result.amount0)


def quote_exact_output(
    state: V3SwapState,
    ticks: TickTable,
    zero_for_one: bool,
    amount_out: int,
    sqrt_price_limit_x96: int | None = None,
) -> int:
    """Amount in (positive, fee included) to receive exactly `amount_out`.

    Without a price limit, an output the pool cannot deliver raises IncompleteSwapError
    (as QuoterV2 does); with a limit the partial result's input is returned.
    """
    if amount_out <= 0:
        raise InvalidInputError("amount_out", amount_out)
    result = _checked(
        state, ticks, zero_for_one, -amount_out, sqrt_price_limit_x96, final_tick=False
    )
    received = -(result.amount1 if zero_for_one else result.amount0)
    if sqrt_price_limit_x96 is None and received != amount_out:
        raise IncompleteSwapError("quote_exact_output", amount_out, received)
    return result.amount0 if zero_for_one else result.amount1
