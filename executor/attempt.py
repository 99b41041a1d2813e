"""One opportunity → the exact transaction, simulated before anything is sent.

`build` makes the unsigned transaction (no simulation: the gas limit is given);
`prepare` estimates gas, re-simulates the exact transaction with `eth_call` against the
latest state, and refuses — with the reason — when it reverts (the contract's custom
error by name), when its profit is not the opportunity's (the state moved), or when the
profit left after gas and the coinbase payment is below the minimum.
"""

from __future__ import annotations

from typing import final

import msgspec

from executor.chain import ChainClient
from executor.errors import ChainRpcError, ExecutorError
from executor.interface import decode_profit, describe_revert, encode_execute
from executor.keys import SigningKey
from executor.route import HopKinds
from executor.settings import ExecutorSettings
from executor.transaction import UnsignedTransaction, next_max_fee, with_margin
from pathfinder.opportunity import Opportunity


class Refusal(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    reason: str
    gas_estimate: int | None = None
    expected_profit: int | None = None


class Prepared(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    opportunity: Opportunity
    transaction: UnsignedTransaction
    coinbase_payment: int
    gas_estimate: int
    expected_profit: int  # what the simulation of the exact transaction returned


class ChainHead(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    chain_id: int
    number: int
    base_fee_per_gas: int


@final
class AttemptBuilder:
    def __init__(
        self,
        settings: ExecutorSettings,
        kinds: HopKinds,
        key: SigningKey,
        chain: ChainClient,
        executor: bytes,
    ) -> None:
        self.settings = settings
        self.kinds = kinds
        self.key = key
        self.chain = chain
        self.executor = executor
        self._wrapped_native = (settings.wrapped_native or "").lower()

    def coinbase_payment(self, opportunity: Opportunity) -> int:
        """The profit share for the coinbase: only with the wrapped native start token."""
        if not self.settings.coinbase_share_bps:
            return 0
        if opportunity.tokens[0].lower() != self._wrapped_native:
            return 0
        return opportunity.profit * self.settings.coinbase_share_bps // 10_000

    def build(
        self, opportunity: Opportunity, head: ChainHead, nonce: int, gas: int
    ) -> tuple[UnsignedTransaction, int]:
        """The transaction asking for exactly the opportunity's profit, and its payment."""
        payment = self.coinbase_payment(opportunity)
        data = encode_execute(
            self.kinds.packed_path(opportunity),
            opportunity.amount_in,
            max(0, opportunity.profit - payment),
            payment,
            head.number + self.settings.deadline_blocks,
        )
        tx = UnsignedTransaction(
            chain_id=head.chain_id,
            nonce=nonce,
            max_priority_fee_per_gas=self.settings.priority_fee_per_gas,
            max_fee_per_gas=next_max_fee(head.base_fee_per_gas, self.settings.priority_fee_per_gas),
            gas=gas,
            to=self.executor,
            data=data,
        )
        return tx, payment

    def prepare(self, opportunity: Opportunity, head: ChainHead, nonce: int) -> Prepared | Refusal:
        try:
            probe, payment = self.build(opportunity, head, nonce, self.settings.estimate_gas_cap)
        except ExecutorError as exc:
            return Refusal(reason=f"cannot build: {exc}")
        sender = self.key.address
        try:
            estimate = self.chain.estimate_gas(probe.call_object(sender))
        except ChainRpcError as exc:
            return Refusal(reason=f"estimate reverted: {revert_reason(exc)}")
        tx = msgspec.structs.replace(
            probe, gas=with_margin(estimate, self.settings.gas_margin_percent)
        )
        try:
            profit = decode_profit(self.chain.call(tx.call_object(sender)))
        except ChainRpcError as exc:
            return Refusal(
                reason=f"simulation reverted: {revert_reason(exc)}", gas_estimate=estimate
            )
        if profit != opportunity.profit:
            return Refusal(
                reason=f"stale state: simulated profit {profit}, opportunity {opportunity.profit}",
                gas_estimate=estimate,
                expected_profit=profit,
            )
        net = profit - payment - gas_cost_in_start_token(opportunity, estimate)
        if net < self.settings.min_net_profit:
            return Refusal(
                reason=f"net profit {net} after gas and payment below "
                f"{self.settings.min_net_profit}",
                gas_estimate=estimate,
                expected_profit=profit,
            )
        return Prepared(
            opportunity=opportunity,
            transaction=tx,
            coinbase_payment=payment,
            gas_estimate=estimate,
            expected_profit=profit,
        )


def gas_cost_in_start_token(opportunity: Opportunity, gas: int) -> int:
    """The opportunity's gas cost (already in start-token units) rescaled from its gas
    units to `gas`, rounded up."""
    if opportunity.gas_units <= 0:
        return 0
    return -(-opportunity.gas_cost * gas // opportunity.gas_units)


def revert_reason(exc: ChainRpcError) -> str:
    if exc.revert_data is not None:
        return describe_revert(exc.revert_data)
    return exc.reason
