"""The opportunity handed to the execution module."""

from __future__ import annotations

import msgspec


class Opportunity(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One verified cycle. Amounts are integers in the start token's smallest unit.

    `profit` = `expected_out` − `amount_in` (exact integer swap math over the arena's
    state at `block`); `net_profit` = `profit` − `gas_cost`; `screened_profit` is the
    closed-form estimate that selected the cycle.

    `coin_indices[n]`, for a hop through a multi-coin pool (Curve, Balancer), is the
    pool's own index of the coin sold and of the coin bought (read from the chain at
    hydration); None for other hops. Empty when the producer of the opportunity did not
    say (the executor then knows only a pool's whitelisted pair, coins 0 and 1).
    """

    chain: str
    block: int
    base_fee_per_gas: int
    after_reorg: bool
    pools: tuple[str, ...]
    zero_for_one: tuple[bool, ...]
    tokens: tuple[str, ...]
    amount_in: int
    expected_out: int
    profit: int
    gas_units: int
    gas_cost: int
    net_profit: int
    screened_profit: float
    screened_amount_in: float
    coin_indices: tuple[tuple[int, int] | None, ...] = ()


OPPORTUNITY_ENCODER = msgspec.json.Encoder()
OPPORTUNITY_DECODER = msgspec.json.Decoder(Opportunity)
