"""The executor as an opportunity sink: select, build, simulate, sign, (send), journal.

`OpportunityExecutor` has the sinks' interface (`__call__(opportunities)`, `close()`),
so the same object serves `arena execute` and, as one more sink on its own thread
(`executor.worker.ExecutorThread`), `arena run` with `[executor] enabled = true`.

Without `settings.live` nothing is sent: each chosen opportunity is built, simulated,
signed and journaled as `simulated`. Live, each transaction is sent and its receipt
awaited (bounded by `receipt_timeout_s`); the outcome is journaled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Self, final

from executor.attempt import AttemptBuilder, ChainHead, Prepared, Refusal
from executor.chain import ChainClient
from executor.errors import ChainRpcError, ContractError, ExecutorError
from executor.journal import AttemptStatus, JournalEntry, JournalWriter
from executor.keys import SigningKey, load_signing_key
from executor.receipts import realized_profit, wait_for_receipt
from executor.route import HopKinds
from executor.selection import select_non_conflicting
from executor.settings import ExecutorSettings
from executor.transaction import sign_transaction
from exex_bridge.whitelist import load_whitelist_file
from pathfinder.opportunity import Opportunity

log = logging.getLogger(__name__)


def parse_address(text: str, what: str) -> bytes:
    body = text.removeprefix("0x")
    if len(body) != 40:
        raise ContractError(what, f"{text!r} is not a 20-byte hex address")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise ContractError(what, f"{text!r} is not a 20-byte hex address") from None


@final
class OpportunityExecutor:
    def __init__(
        self,
        settings: ExecutorSettings,
        *,
        key: SigningKey,
        chain: ChainClient,
        kinds: HopKinds,
        journal: JournalWriter,
        chain_id: int,
    ) -> None:
        self.settings = settings
        self.key = key
        self.chain = chain
        self.journal = journal
        self.chain_id = chain_id
        self.executor = parse_address(settings.executor, "executor")
        self.builder = AttemptBuilder(settings, kinds, key, chain, self.executor)
        self.stop = threading.Event()
        self.name = "executor"
        self.counts: dict[AttemptStatus, int] = dict.fromkeys(AttemptStatus, 0)

    @classmethod
    def open(cls, settings: ExecutorSettings) -> Self:
        """Load the key and the whitelist, and check the node and the contract."""
        key = load_signing_key(settings.key_file, settings.password_file)
        chain = ChainClient(settings.rpc_url)
        chain_id = chain.chain_id()
        executor = parse_address(settings.executor, "executor")
        if not chain.code(executor):
            raise ContractError("executor", f"no contract at {settings.executor}")
        kinds = HopKinds(load_whitelist_file(settings.whitelist).pools)
        mode = "LIVE" if settings.live else "dry run"
        log.info("executor %s from %s (%s)", settings.executor, key.address_hex, mode)
        return cls(
            settings,
            key=key,
            chain=chain,
            kinds=kinds,
            journal=JournalWriter(settings.journal),
            chain_id=chain_id,
        )

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        by_block: dict[int, list[Opportunity]] = {}
        for opportunity in opportunities:
            by_block.setdefault(opportunity.block, []).append(opportunity)
        for block in sorted(by_block):
            if self.stop.is_set():
                return
            self.execute_block(by_block[block])

    def execute_block(self, opportunities: Sequence[Opportunity]) -> None:
        choices = select_non_conflicting(
            opportunities,
            min_net_profit=self.settings.min_net_profit,
            cap_for=self.settings.cap_for,
            routable=self.builder.kinds.routable,
        )
        for choice in choices:
            if choice.chosen:
                self.attempt(choice.opportunity)
            else:
                self._record(choice.opportunity, AttemptStatus.REFUSED, reason=choice.refusal)

    def attempt(self, opportunity: Opportunity) -> None:
        try:
            number, base_fee = self.chain.latest_header()
            head = ChainHead(chain_id=self.chain_id, number=number, base_fee_per_gas=base_fee)
            nonce = self.chain.nonce(self.key.address)
            outcome = self.builder.prepare(opportunity, head, nonce)
        except ExecutorError as exc:
            self._record(opportunity, AttemptStatus.REFUSED, reason=f"node: {exc}")
            return
        if isinstance(outcome, Refusal):
            self._record(
                opportunity,
                AttemptStatus.REFUSED,
                reason=outcome.reason,
                gas_estimate=outcome.gas_estimate,
                expected_profit=outcome.expected_profit,
            )
            return
        self.send(outcome)

    def send(self, prepared: Prepared) -> None:
        """Sign; journal as simulated (dry run), or send and follow it to its receipt."""
        signed = sign_transaction(prepared.transaction, self.key)
        tx_hash = "0x" + signed.tx_hash.hex()
        fields: dict[str, Any] = {
            "tx_hash": tx_hash,
            "nonce": prepared.transaction.nonce,
            "expected_profit": prepared.expected_profit,
            "coinbase_payment": prepared.coinbase_payment,
            "gas_estimate": prepared.gas_estimate,
            "gas_limit": prepared.transaction.gas,
            "max_fee_per_gas": prepared.transaction.max_fee_per_gas,
        }
        opportunity = prepared.opportunity
        if not self.settings.live:
            self._record(opportunity, AttemptStatus.SIMULATED, reason="dry run", **fields)
            return
        try:
            self.chain.send_raw(signed.raw)
        except ChainRpcError as exc:
            self._record(opportunity, AttemptStatus.REFUSED, reason=f"send: {exc}", **fields)
            return
        self._record(opportunity, AttemptStatus.SENT, **fields)
        self.follow(opportunity, fields)

    def follow(self, opportunity: Opportunity, fields: dict[str, Any]) -> None:
        try:
            receipt = wait_for_receipt(
                self.chain,
                fields["tx_hash"],
                self.settings.receipt_timeout_s,
                self.settings.receipt_poll_s,
                self.stop,
            )
        except ChainRpcError as exc:
            receipt = None
            log.warning("receipt of %s: %s", fields["tx_hash"], exc)
        if receipt is None:
            self._record(opportunity, AttemptStatus.DROPPED, reason="no receipt", **fields)
            return
        mined = {
            "mined_block": int(receipt["blockNumber"], 16),
            "gas_used": int(receipt["gasUsed"], 16),
            "realized_profit": realized_profit(
                receipt, opportunity.tokens[0], self.settings.executor
            ),
        }
        if receipt.get("status") == "0x1":
            self._record(opportunity, AttemptStatus.INCLUDED, **fields, **mined)
        else:
            reason = "reverted on chain: the state moved after the simulation"
            self._record(opportunity, AttemptStatus.REVERTED, reason=reason, **fields, **mined)

    def refuse(self, opportunities: Sequence[Opportunity], reason: str) -> None:
        """Journals each opportunity as refused without attempting it."""
        for opportunity in opportunities:
            self._record(opportunity, AttemptStatus.REFUSED, reason=reason)

    def _record(self, opportunity: Opportunity, status: AttemptStatus, **fields: Any) -> None:
        fields.setdefault("expected_profit", opportunity.profit)
        entry = JournalEntry(
            block=opportunity.block,
            status=status,
            pools=opportunity.pools,
            start_token=opportunity.tokens[0],
            amount_in=opportunity.amount_in,
            sender=self.key.address_hex,
            **fields,
        )
        self.journal.write(entry)
        self.counts[status] += 1
        if status in (AttemptStatus.REVERTED, AttemptStatus.DROPPED):
            log.warning("attempt %s at block %d: %s", status, entry.block, entry.reason)
        else:
            log.info("attempt %s at block %d %s", status, entry.block, entry.reason)

    def close(self) -> None:
        self.stop.set()
        self.journal.close()
