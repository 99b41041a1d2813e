"""What a transaction may pay: fees from the profit, bounded by hard caps.

The max fee per gas covers the worst base fee of the last block the transaction may be
included in (the base fee rises by at most 12.5 % per block, rounded up each block) plus
the priority fee. The priority fee is the larger of the configured floor and a configured
share of the profit spread over the gas limit. Hard caps bound the max fee per gas, the
worst-case gas cost of one transaction and the coinbase payment's share of the profit;
the priority fee is lowered to fit them, and when even the floor does not fit, nothing is
sent. Nothing is sent either when the worst-case net profit (profit − coinbase payment −
gas limit × max fee, in start-token units, rounded against us) is below the minimum.

Amounts in native currency are wei; `profit`, `coinbase_payment` and `min_net_profit` are
start-token units. `GasPrice` converts: start-token units per wei of gas, as a fraction.

Replacements (same nonce, a pending transaction swapped for another) must raise both fee
fields by at least 10 %: geth and reth refuse less ("replacement transaction
underpriced"); `replacement_fees` gives the least accepted bump, `is_valid_replacement`
checks one.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

import msgspec

BASE_FEE_RISE: Final = Fraction(9, 8)  # the most one block can raise the base fee
REPLACEMENT_BUMP_PERCENT: Final = 10
BPS: Final = 10_000


class FeeCaps(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    min_priority_fee_per_gas: int  # the floor of the priority fee
    priority_share_bps: int = 0  # share of the profit offered as priority fee
    max_fee_per_gas: int  # hard cap
    max_gas_cost: int  # hard cap on gas limit × max fee per gas, wei
    max_coinbase_share_bps: int = BPS  # hard cap on coinbase payment / profit
    min_net_profit: int = 1  # start-token units, worst case
    target_blocks: int = 1  # blocks after the latest the transaction may land in


class FeeQuote(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    base_fee_per_gas: int  # the latest block's
    gas_limit: int
    profit: int  # start-token units
    coinbase_payment: int  # start-token units, paid from the profit
    start_per_wei: Fraction  # start-token units per wei


class Fees(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    worst_base_fee_per_gas: int
    worst_gas_cost: int  # wei: gas limit × max fee per gas
    worst_net_profit: int  # start-token units


class FeeRefusal(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    reason: str
    kind: str  # a fixed vocabulary for metrics: fee_cap, gas_cost_cap, coinbase_cap, unprofitable


def worst_base_fee(base_fee_per_gas: int, blocks: int) -> int:
    """The highest base fee `blocks` blocks after one with `base_fee_per_gas`."""
    fee = base_fee_per_gas
    for _ in range(max(1, blocks)):
        fee = -(-fee * BASE_FEE_RISE.numerator // BASE_FEE_RISE.denominator)
    return fee


def in_start_token(wei: int, start_per_wei: Fraction) -> int:
    """`wei` in start-token units, rounded up (a cost)."""
    return -(-wei * start_per_wei.numerator // start_per_wei.denominator)


def decide_fees(quote: FeeQuote, caps: FeeCaps) -> Fees | FeeRefusal:
    """The fees to send with, or why nothing may be sent."""
    if quote.coinbase_payment * BPS > quote.profit * caps.max_coinbase_share_bps:
        return FeeRefusal(
            kind="coinbase_cap",
            reason=f"coinbase payment {quote.coinbase_payment} is over "
            f"{caps.max_coinbase_share_bps} bps of the profit {quote.profit}",
        )
    worst_base = worst_base_fee(quote.base_fee_per_gas, caps.target_blocks)
    floor = caps.min_priority_fee_per_gas
    if worst_base + floor > caps.max_fee_per_gas:
        return FeeRefusal(
            kind="fee_cap",
            reason=f"max fee per gas {worst_base + floor} (worst base fee {worst_base} "
            f"+ priority {floor}) over the cap {caps.max_fee_per_gas}",
        )
    gas = max(1, quote.gas_limit)
    if gas * (worst_base + floor) > caps.max_gas_cost:
        return FeeRefusal(
            kind="gas_cost_cap",
            reason=f"worst-case gas cost {gas * (worst_base + floor)} wei over the cap "
            f"{caps.max_gas_cost}",
        )
    tip = max(floor, _profit_share_per_gas(quote, caps.priority_share_bps, gas))
    tip = min(tip, caps.max_fee_per_gas - worst_base, caps.max_gas_cost // gas - worst_base)
    max_fee = worst_base + tip
    cost = gas * max_fee
    net = quote.profit - quote.coinbase_payment - in_start_token(cost, quote.start_per_wei)
    if net < caps.min_net_profit:
        return FeeRefusal(
            kind="unprofitable",
            reason=f"worst-case net profit {net} (gas up to {cost} wei at {max_fee} per gas) "
            f"below {caps.min_net_profit}",
        )
    return Fees(
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=tip,
        worst_base_fee_per_gas=worst_base,
        worst_gas_cost=cost,
        worst_net_profit=net,
    )


def _profit_share_per_gas(quote: FeeQuote, share_bps: int, gas: int) -> int:
    if share_bps <= 0 or quote.start_per_wei <= 0:
        return 0
    share = Fraction(quote.profit * share_bps, BPS) / quote.start_per_wei
    return int(share // gas)


def replacement_fees(max_fee_per_gas: int, max_priority_fee_per_gas: int) -> tuple[int, int]:
    """The least (max fee, priority fee) a node accepts to replace a pending transaction."""
    return _bumped(max_fee_per_gas), _bumped(max_priority_fee_per_gas)


def is_valid_replacement(
    old_max_fee: int, old_priority_fee: int, new_max_fee: int, new_priority_fee: int
) -> bool:
    """Both fee fields raised by at least `REPLACEMENT_BUMP_PERCENT` (and by one wei at least)."""
    least_max, least_priority = replacement_fees(old_max_fee, old_priority_fee)
    return new_max_fee >= least_max and new_priority_fee >= least_priority


def _bumped(value: int) -> int:
    return max(value + 1, -(-value * (100 + REPLACEMENT_BUMP_PERCENT) // 100))
