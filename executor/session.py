"""The executor as an opportunity sink: select, build, simulate, sign, (send), journal.

`OpportunityExecutor` has the sinks' interface (`__call__(opportunities)`, `close()`),
so the same object serves `arena execute` and, as one more sink on its own thread
(`executor.worker.ExecutorThread`), `arena run` with `[executor] enabled = true`.

Without `settings.live` nothing is sent: each chosen opportunity is built, simulated,
signed and journaled as `simulated`. Live, each transaction gets its nonce from the
sending key's lane (`executor.lane_sender`), is sent unless a guard stops it (kill
switch, loss limits, the key's balance), and its receipt is awaited (bounded by
`receipt_timeout_s`); the outcome is journaled, timed per stage and counted
(`executor.metrics`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self, final

from prometheus_client import CollectorRegistry

from executor.attempt import AttemptBuilder, ChainHead, Prepared, Refusal
from executor.chain import ChainClient
from executor.errors import ChainRpcError, ContractError, ExecutorError
from executor.journal import AttemptStatus, JournalEntry, JournalWriter
from executor.keys import SigningKey, load_signing_key
from executor.kill_switch import KillSwitch
from executor.lane_sender import LaneSender, SendStatus
from executor.lane_setup import open_lane
from executor.loss_limits import LossGuard, LossLimits, MinedOutcome
from executor.metrics import ExecutionMetrics
from executor.nats_link import NatsLink
from executor.nonce_lane import NonceLane
from executor.preflight import check_balance, lane_gauges, worst_transaction_cost
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
        lane: NonceLane | None = None,
        metrics: ExecutionMetrics | None = None,
        link: NatsLink | None = None,
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
        self.metrics = metrics or ExecutionMetrics()
        self.lane = lane  # None: dry run (the node's pending count serves)
        self.link = link
        self.sender = None if lane is None else LaneSender(chain, key, lane, self.metrics)
        self.kill = KillSwitch(
            None if settings.kill_file is None else Path(settings.kill_file),
            on_engage=lambda: self.metrics.halted.labels(guard="kill_switch").set(1),
        )
        self.loss = LossGuard(
            LossLimits(
                max_reverted=settings.max_reverted,
                max_gas_spent=settings.max_gas_spent,
                window_blocks=settings.loss_window_blocks,
            )
        )

    @classmethod
    def open(cls, settings: ExecutorSettings, registry: CollectorRegistry | None = None) -> Self:
        """Load the key and the whitelist, and check the node and the contract; live,
        check the key's balance and open its nonce lane (and the kill subject)."""
        key = load_signing_key(settings.key_file, settings.password_file)
        chain = ChainClient(settings.rpc_url)
        chain_id = chain.chain_id()
        executor = parse_address(settings.executor, "executor")
        if not chain.code(executor):
            raise ContractError("executor", f"no contract at {settings.executor}")
        kinds = HopKinds(load_whitelist_file(settings.whitelist).pools)
        mode = "LIVE" if settings.live else "dry run"
        log.info("executor %s from %s (%s)", settings.executor, key.address_hex, mode)
        lane, link = None, None
        if settings.live:
            _, base_fee = chain.latest_header()
            need = worst_transaction_cost(settings, base_fee)
            check_balance(chain.balance(key.address), need, key.address_hex)
            setup = open_lane(settings, chain, key.address, chain_id)
            lane, link = setup.lane, setup.link
        instance = cls(
            settings,
            key=key,
            chain=chain,
            kinds=kinds,
            journal=JournalWriter(settings.journal),
            chain_id=chain_id,
            lane=lane,
            metrics=ExecutionMetrics(registry),
            link=link,
        )
        if link is not None:
            try:
                link.subscribe(settings.kill_subject, instance.kill.on_message)
            except ExecutorError:
                instance.close()
                raise
        return instance

    def halted(self) -> tuple[str, str] | None:
        """(kind, why) when a guard stops sending."""
        killed = self.kill.engaged()
        if killed is not None:
            self.metrics.halted.labels(guard="kill_switch").set(1)
            return "kill_switch", killed
        tripped = self.loss.tripped()
        if tripped is not None:
            self.metrics.halted.labels(guard="loss_limit").set(1)
            return "loss_limit", tripped
        return None

    def __call__(self, opportunities: Sequence[Opportunity]) -> None:
        by_block: dict[int, list[Opportunity]] = {}
        for opportunity in opportunities:
            by_block.setdefault(opportunity.block, []).append(opportunity)
        for block in sorted(by_block):
            if self.stop.is_set():
                return
            self.execute_block(by_block[block])

    def execute_block(self, opportunities: Sequence[Opportunity]) -> None:
        if self.sender is not None and any(o.after_reorg for o in opportunities):
            self.sender.resync_after_reorg()
        with self.metrics.stage("plan"):
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
                self._record(
                    choice.opportunity,
                    AttemptStatus.REFUSED,
                    kind="selection",
                    reason=choice.refusal,
                )

    def attempt(self, opportunity: Opportunity) -> None:
        halted = self.halted()
        if halted is not None:
            self._record(opportunity, AttemptStatus.REFUSED, kind=halted[0], reason=halted[1])
            return
        try:
            with self.metrics.stage("simulate"):
                number, base_fee = self.chain.latest_header()
                head = ChainHead(chain_id=self.chain_id, number=number, base_fee_per_gas=base_fee)
                # Live, the lane gives the nonce just before sending (the simulation
                # does not depend on it).
                nonce = 0 if self.sender is not None else self.chain.nonce(self.key.address)
                outcome = self.builder.prepare(opportunity, head, nonce)
        except ExecutorError as exc:
            self._record(opportunity, AttemptStatus.REFUSED, kind="node", reason=f"node: {exc}")
            return
        if isinstance(outcome, Refusal):
            self._record(
                opportunity,
                AttemptStatus.REFUSED,
                kind=outcome.kind,
                reason=outcome.reason,
                gas_estimate=outcome.gas_estimate,
                expected_profit=outcome.expected_profit,
            )
            return
        self.send(outcome)

    def send(self, prepared: Prepared) -> None:
        """Sign; journal as simulated (dry run), or send and follow it to its receipt."""
        tx = prepared.transaction
        fields: dict[str, Any] = {
            "expected_profit": prepared.expected_profit,
            "coinbase_payment": prepared.coinbase_payment,
            "gas_estimate": prepared.gas_estimate,
            "gas_limit": tx.gas,
            "max_fee_per_gas": tx.max_fee_per_gas,
        }
        opportunity = prepared.opportunity
        if self.sender is None:
            with self.metrics.stage("sign"):
                signed = sign_transaction(tx, self.key)
            fields |= {"tx_hash": "0x" + signed.tx_hash.hex(), "nonce": tx.nonce}
            self._record(opportunity, AttemptStatus.SIMULATED, reason="dry run", **fields)
            return
        refusal = self.refusal_before_send(tx.gas * tx.max_fee_per_gas)
        if refusal is not None:
            self._record(
                opportunity, AttemptStatus.REFUSED, kind=refusal[0], reason=refusal[1], **fields
            )
            return
        result = self.sender.send(tx)
        lane_gauges(self.lane, self.metrics)
        if result.signed is not None:
            fields |= {"tx_hash": result.tx_hash, "nonce": result.signed.transaction.nonce}
        if result.status is not SendStatus.ACCEPTED:
            reason = f"send: {result.reason}"
            self._record(
                opportunity, AttemptStatus.REFUSED, kind=result.kind, reason=reason, **fields
            )
            return
        self._record(opportunity, AttemptStatus.SENT, **fields)
        self.metrics.expected_profit.labels(token=opportunity.tokens[0].lower()).inc(
            prepared.expected_profit
        )
        self.follow(opportunity, fields)

    def refusal_before_send(self, worst_cost: int) -> tuple[str, str] | None:
        """The last look before a nonce is reserved: the guards, then the balance."""
        halted = self.halted()
        if halted is not None:
            return halted
        try:
            balance = self.chain.balance(self.key.address, "pending")
        except ChainRpcError as exc:
            return "node", f"node: {exc}"
        if balance < worst_cost:
            return "balance", (
                f"sending key {self.key.address_hex} holds {balance} wei; this transaction "
                f"may cost {worst_cost} wei ({worst_cost - balance} more needed)"
            )
        return None

    def follow(self, opportunity: Opportunity, fields: dict[str, Any]) -> None:
        try:
            with self.metrics.stage("include"):
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
            self._record(
                opportunity, AttemptStatus.DROPPED, kind="no_receipt", reason="no receipt", **fields
            )
            if self.sender is not None:
                self.sender.resync_quietly()
            return
        self.account_mined(opportunity, receipt)
        mined: dict[str, Any] = {
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
            self._record(
                opportunity,
                AttemptStatus.REVERTED,
                kind="reverted_on_chain",
                reason=reason,
                **fields,
                **mined,
            )

    def refuse(self, opportunities: Sequence[Opportunity], reason: str) -> None:
        """Journals each opportunity as refused without attempting it."""
        for opportunity in opportunities:
            self._record(opportunity, AttemptStatus.REFUSED, kind="not_attempted", reason=reason)

    def account_mined(self, opportunity: Opportunity, receipt: dict[str, Any]) -> None:
        """Gas paid and profit realized, into the metrics and the loss limits."""
        gas_used = int(receipt["gasUsed"], 16)
        price = int(receipt.get("effectiveGasPrice", "0x0"), 16)
        reverted = receipt.get("status") != "0x1"
        block = int(receipt["blockNumber"], 16)
        self.metrics.gas_spent.inc(gas_used * price)
        if not reverted:
            realized = realized_profit(receipt, opportunity.tokens[0], self.settings.executor)
            if realized > 0:
                self.metrics.realized_profit.labels(token=opportunity.tokens[0].lower()).inc(
                    realized
                )
        self.loss.record(MinedOutcome(block=block, reverted=reverted, gas_paid=gas_used * price))
        if self.loss.tripped() is not None:
            self.metrics.halted.labels(guard="loss_limit").set(1)

    def _record(
        self, opportunity: Opportunity, status: AttemptStatus, kind: str = "", **fields: Any
    ) -> None:
        self.metrics.attempts.labels(outcome=status.value, reason=kind or "none").inc()
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
        if self.link is not None:
            self.link.close()
