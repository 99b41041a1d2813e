"""One opportunity → the exact transaction, simulated before anything is sent.

`build` makes the unsigned transaction (no simulation: the gas limit is given);
`prepare` estimates gas, sets the fees by the fee policy (`executor.fee_policy`: worst
base fee over the deadline's blocks, priority fee from the profit, hard caps, worst-case
net profit), re-simulates the exact transaction with `eth_call` against the latest
state, and refuses — with the reason and its kind — when a cap or the minimum forbids
it, when it reverts (the contract's custom error by name), or when its profit is not the
opportunity's (the state moved).
"""

from __future__ import annotations

from fractions import Fraction
from typing import final

import msgspec

from executor.chain import ChainClient
from executor.errors import ChainRpcError, ExecutorError
from executor.fee_policy import FeeCaps, FeeQuote, FeeRefusal, Fees, decide_fees
from executor.interface import decode_profit, describe_revert, encode_execute
from executor.keys import SigningKey
from executor.route import HopKinds
from executor.settings import ExecutorSettings
from executor.transaction import UnsignedTransaction, next_max_fee, with_margin
from pathfinder.opportunity import Opportunity


class Refusal(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    reason: str
    kind: str = "other"  # a fixed vocabulary, the metrics' `reason` label
    gas_estimate: int | None = None
    expected_profit: int | None = None


class Prepared(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    opportunity: Opportunity
    transaction: UnsignedTransaction
    coinbase_payment: int
    gas_estimate: int
    expected_profit: int  # what the simulation of the exact transaction returned
    fees: Fees | None = None


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

    def fee_caps(self) -> FeeCaps:
        s = self.settings
        return FeeCaps(
            min_priority_fee_per_gas=s.priority_fee_per_gas,
            priority_share_bps=s.priority_share_bps,
            max_fee_per_gas=s.max_fee_per_gas,
            max_gas_cost=s.max_gas_cost,
            max_coinbase_share_bps=s.max_coinbase_share_bps,
            min_net_profit=s.min_net_profit,
            target_blocks=max(1, s.deadline_blocks),
        )

    def start_per_wei(self, opportunity: Opportunity) -> Fraction:
        """The opportunity's gas price in start-token units per wei (its gas cost over
        its gas at its base fee); 1 for the wrapped native token; 0 when unpriceable,
        as the pathfinder counts it."""
        if opportunity.tokens[0].lower() == self._wrapped_native:
            return Fraction(1)
        wei = opportunity.gas_units * opportunity.base_fee_per_gas
        if wei <= 0 or opportunity.gas_cost <= 0:
            return Fraction(0)
        return Fraction(opportunity.gas_cost, wei)

    def prepare(self, opportunity: Opportunity, head: ChainHead, nonce: int) -> Prepared | Refusal:
        try:
            probe, payment = self.build(opportunity, head, nonce, self.settings.estimate_gas_cap)
        except ExecutorError as exc:
            return Refusal(reason=f"cannot build: {exc}", kind="build")
        sender = self.key.address
        try:
            estimate = self.chain.estimate_gas(probe.call_object(sender))
        except ChainRpcError as exc:
            return Refusal(reason=f"estimate reverted: {_reason(exc)}", kind="estimate_reverted")
        gas = with_margin(estimate, self.settings.gas_margin_percent)
        quote = FeeQuote(
            base_fee_per_gas=head.base_fee_per_gas,
            gas_limit=gas,
            profit=opportunity.profit,
            coinbase_payment=payment,
            start_per_wei=self.start_per_wei(opportunity),
        )
        fees = decide_fees(quote, self.fee_caps())
        if isinstance(fees, FeeRefusal):
            return Refusal(reason=fees.reason, kind=fees.kind, gas_estimate=estimate)
        tx = msgspec.structs.replace(
            probe,
            gas=gas,
            max_fee_per_gas=fees.max_fee_per_gas,
            max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
        )
        try:
            profit = decode_profit(self.chain.call(tx.call_object(sender)))
        except ChainRpcError as exc:
            return Refusal(
                reason=f"simulation reverted: {_reason(exc)}",
                kind="simulation_reverted",
                gas_estimate=estimate,
            )
        if profit != opportunity.profit:
            return Refusal(
                reason=f"stale state: simulated profit {profit}, opportunity {opportunity.profit}",
                kind="stale_state",
                gas_estimate=estimate,
                expected_profit=profit,
            )
        return Prepared(
            opportunity=opportunity,
            transaction=tx,
            coinbase_payment=payment,
            gas_estimate=estimate,
            expected_profit=profit,
            fees=fees,
        )


def _reason(exc: ChainRpcError) -> str:
    if exc.revert_data is not None:
        return describe_revert(exc.revert_data)
    return exc.reason
