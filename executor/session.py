"""The executor as an opportunity sink: select, build, simulate, sign, (send), journal.

`OpportunityExecutor` has the sinks' interface (`__call__(opportunities)`, `close()`),
so the same object serves `arena execute` and, as one more sink on its own thread
(`executor.worker.ExecutorThread`), `arena run` with `[executor] enabled = true`.

Without `settings.live` nothing is sent: each chosen opportunity is built, simulated,
signed and journaled as `simulated`. Live, one path for every transaction: unless a
guard stops it (kill switch, loss limits, the key's balance), it gets its nonce from the
sending key's lane and is handed to the channel (`executor.lane_sender`: the node's
mempool, or bundle relays), then followed by inclusion tracking
(`executor.inclusion_tracker`) until it is mined or dropped (bounded by
`receipt_timeout_s`); later transitions (confirmed, reorged) are journaled as later
polls see them, and each outcome returns to the lane (`executor.nonce_outcomes`).
Stages are timed and outcomes counted (`executor.metrics`, `executor.outcome_metrics`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self, final

from prometheus_client import CollectorRegistry

from executor.attempt import AttemptBuilder, ChainHead, Prepared, Refusal, revert_reason
from executor.chain import ChainClient
from executor.chain_pool import ChainPool
from executor.channel_setup import open_channel
from executor.channels.mempool import MempoolChannel
from executor.channels.submission import Channel, Submission
from executor.errors import ChainRpcError, ContractError, ExecutorError
from executor.inclusion import InclusionState, InclusionTrack, Transition
from executor.inclusion_tracker import InclusionTracker, TrackedAttempt
from executor.interface import decode_profit
from executor.journal import AttemptStatus, JournalEntry, JournalWriter
from executor.keys import SigningKey, load_signing_key
from executor.kill_switch import KillSwitch
from executor.lane_sender import LaneSender, SendStatus
from executor.lane_setup import open_lane
from executor.loss_limits import LossGuard, LossLimits, MinedOutcome
from executor.metrics import ExecutionMetrics
from executor.nats_link import NatsLink
from executor.nonce_lane import NonceLane
from executor.nonce_outcomes import NonceOutcomes
from executor.outcome_metrics import OutcomeMetrics
from executor.preflight import check_balance, lane_gauges, worst_transaction_cost
from executor.route import HopKinds
from executor.selection import select_non_conflicting
from executor.settings import ExecutorSettings
from executor.transaction import SignedTransaction, sign_transaction
from exex_bridge.rpc import RpcMetrics
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
        outcomes: OutcomeMetrics | None = None,
        channel: Channel | None = None,
        link: NatsLink | None = None,
    ) -> None:
        self.settings = settings
        self.key = key
        self.chain = chain
        self.chain_id = chain_id
        self.executor = parse_address(settings.executor, "executor")
        self.builder = AttemptBuilder(settings, kinds, key, chain, self.executor)
        self.journal = journal
        self.stop = threading.Event()
        self.name = "executor"
        self.counts: dict[AttemptStatus, int] = dict.fromkeys(AttemptStatus, 0)
        self.metrics = metrics or ExecutionMetrics()
        self.outcomes = outcomes or OutcomeMetrics(CollectorRegistry())
        self.channel = channel or MempoolChannel(chain, self.outcomes)
        self.lane = lane  # None: dry run (the node's pending count serves)
        self.link = link
        self.pool: ChainPool | None = None  # closed with the executor
        self.sender = (
            None
            if lane is None
            else LaneSender(chain, key, lane, self.metrics, channel=self.channel)
        )
        self.tracker = InclusionTracker(
            chain,
            executor=settings.executor,
            channel=self.channel,
            nonces=NonceOutcomes(chain, self.sender, self.outcomes),
            metrics=self.outcomes,
            record=self._record_transition,
            resimulate=self.resimulate,
        )
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
    def open(
        cls,
        settings: ExecutorSettings,
        registry: CollectorRegistry | None = None,
        lane: NonceLane | None = None,
        rpc_metrics: RpcMetrics | None = None,
    ) -> Self:
        """Load the key and the whitelist, connect to the endpoints of `rpc_url`
        (`executor.chain_pool`; their metrics in `rpc_metrics`, else new ones in
        `registry`), and check the node and the contract; live, check the key's balance
        and open its nonce lane (`lane`, when given, instead: tests) and the kill subject."""
        key = load_signing_key(settings.key_file, settings.password_file)
        pool = ChainPool(settings.rpc_url, rpc_metrics or RpcMetrics(registry))
        try:
            instance = cls._open_on(settings, pool.chain, key, registry, lane)
        except BaseException:
            pool.close()
            raise
        instance.pool = pool
        return instance

    @classmethod
    def _open_on(
        cls,
        settings: ExecutorSettings,
        chain: ChainClient,
        key: SigningKey,
        registry: CollectorRegistry | None,
        lane: NonceLane | None,
    ) -> Self:
        chain_id = chain.chain_id()
        executor = parse_address(settings.executor, "executor")
        if not chain.code(executor):
            raise ContractError("executor", f"no contract at {settings.executor}")
        kinds = HopKinds(load_whitelist_file(settings.whitelist).pools)
        outcomes = OutcomeMetrics(registry)
        channel = open_channel(settings, chain, outcomes)
        mode = "LIVE" if settings.live else "dry run"
        log.info(
            "executor %s from %s (%s, %s)", settings.executor, key.address_hex, mode, channel.name
        )
        link = None
        if settings.live:
            _, base_fee = chain.latest_header()
            need = worst_transaction_cost(settings, base_fee)
            check_balance(chain.balance(key.address), need, key.address_hex)
            if lane is None:
                setup = open_lane(settings, chain, key.address, chain_id)
                lane, link = setup.lane, setup.link
        else:
            lane = None
        instance = cls(
            settings,
            key=key,
            chain=chain,
            kinds=kinds,
            journal=JournalWriter(settings.journal),
            chain_id=chain_id,
            lane=lane,
            metrics=ExecutionMetrics(registry),
            outcomes=outcomes,
            channel=channel,
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
        self.tracker.poll()
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
        self.send(outcome, head.number)

    def send(self, prepared: Prepared, head: int | None = None) -> None:
        """Sign; journal as simulated (dry run), or send through the lane and the channel
        and follow it until it is mined or dropped. `head`: the block it was built on."""
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
        fields["channel"] = self.channel.name
        refusal = self.refusal_before_send(tx.gas * tx.max_fee_per_gas)
        if refusal is None and head is None:
            try:
                head = self.chain.block_number()
            except ChainRpcError as exc:
                refusal = "node", f"node: {exc}"
        if refusal is not None or head is None:
            kind, reason = refusal or ("node", "no head")
            self._record(opportunity, AttemptStatus.REFUSED, kind=kind, reason=reason, **fields)
            return
        result = self.sender.send(tx, head)
        lane_gauges(self.lane, self.metrics)
        if result.signed is not None:
            fields |= {"tx_hash": result.tx_hash, "nonce": result.signed.transaction.nonce}
        submission = result.submission or Submission(
            channel=self.channel.name, accepted=result.status is SendStatus.ACCEPTED
        )
        if result.submission is None:  # the node itself: counted here
            outcome = "accepted" if submission.accepted else "refused"
            self.outcomes.sends.labels(self.channel.name, outcome).inc()
        if result.status is not SendStatus.ACCEPTED:
            reason = result.reason if result.submission else f"send: {result.reason}"
            self._record(
                opportunity, AttemptStatus.REFUSED, kind=result.kind, reason=reason, **fields
            )
            return
        assert result.signed is not None  # accepted: signed and sent
        self.track_sent(prepared, result.signed, submission, head, fields)

    def track_sent(
        self,
        prepared: Prepared,
        signed: SignedTransaction,
        submission: Submission,
        head: int,
        fields: dict[str, Any],
    ) -> None:
        opportunity = prepared.opportunity
        drop_after = self.settings.drop_after_blocks
        if submission.first_block is not None and submission.last_block is not None:
            fields["bundle_uuid"] = submission.bundle_uuid
            fields["target_blocks"] = (submission.first_block, submission.last_block)
            drop_after = submission.last_block - head
        self._record(opportunity, AttemptStatus.SENT, reason=submission.reason, **fields)
        self.metrics.expected_profit.labels(token=opportunity.tokens[0].lower()).inc(
            prepared.expected_profit
        )
        attempt = TrackedAttempt(
            opportunity=opportunity,
            signed=signed,
            submission=submission,
            expected_profit=prepared.expected_profit,
            fields=fields,
            track=InclusionTrack(
                head, confirm_depth=self.settings.confirm_depth, drop_after_blocks=drop_after
            ),
        )
        self.tracker.track(attempt)
        with self.metrics.stage("include"):
            self.follow(attempt)

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

    def follow(self, attempt: TrackedAttempt) -> None:
        """Polls until the attempt is no longer `sent` (mined, or dropped after its
        blocks); after `receipt_timeout_s` (or on stop) it is dropped."""
        deadline = time.monotonic() + self.settings.receipt_timeout_s
        while True:
            self.tracker.poll()
            if attempt.track.state is not InclusionState.SENT:
                return
            left = deadline - time.monotonic()
            if left <= 0 or self.stop.wait(min(self.settings.receipt_poll_s, left)):
                break
        timeout = self.settings.receipt_timeout_s
        self.tracker.drop(attempt, f"no receipt within {timeout:g} s")

    def track(self) -> None:
        """Moves the attempts still pending (included, reorged) as far as the node says."""
        self.tracker.poll()

    def resimulate(self, signed: SignedTransaction, expected_profit: int) -> str | None:
        """The exact transaction simulated at the tip: None when it still returns the
        journaled profit, else why not."""
        call = signed.transaction.call_object(self.key.address)
        try:
            profit = decode_profit(self.chain.call(call))
        except ChainRpcError as exc:
            return f"simulation reverted: {revert_reason(exc)}"
        if profit != expected_profit:
            return f"simulated profit {profit}, journaled {expected_profit}"
        return None

    def refuse(self, opportunities: Sequence[Opportunity], reason: str) -> None:
        """Journals each opportunity as refused without attempting it."""
        for opportunity in opportunities:
            self._record(opportunity, AttemptStatus.REFUSED, kind="not_attempted", reason=reason)

    def account_mined(self, opportunity: Opportunity, receipt: dict[str, Any]) -> None:
        """Gas paid by a mined transaction, into the metrics and the loss limits."""
        gas_paid = int(receipt["gasUsed"], 16) * int(receipt.get("effectiveGasPrice", "0x0"), 16)
        self._account(int(receipt["blockNumber"], 16), receipt.get("status") != "0x1", gas_paid)

    def _account(self, block: int, reverted: bool, gas_paid: int) -> None:
        self.metrics.gas_spent.inc(gas_paid)
        self.loss.record(MinedOutcome(block=block, reverted=reverted, gas_paid=gas_paid))
        if self.loss.tripped() is not None:
            self.metrics.halted.labels(guard="loss_limit").set(1)

    def _record_transition(
        self, opportunity: Opportunity, move: Transition, fields: dict[str, Any]
    ) -> None:
        # Gas is paid when mined (included or reverted); a transaction reorged out and
        # mined again counts twice, which errs on the loss limits' safe side.
        mined = move.mined
        if mined is not None and move.state in (InclusionState.INCLUDED, InclusionState.REVERTED):
            self._account(
                mined.block, move.state is InclusionState.REVERTED, mined.gas_used * mined.gas_price
            )
        kind = "reverted_on_chain" if move.state is InclusionState.REVERTED else ""
        self._record(opportunity, AttemptStatus(move.state.value), kind=kind, **fields)

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
        if status in (AttemptStatus.REVERTED, AttemptStatus.DROPPED, AttemptStatus.REORGED):
            log.warning("attempt %s at block %d: %s", status, entry.block, entry.reason)
        else:
            log.info("attempt %s at block %d %s", status, entry.block, entry.reason)

    def close(self) -> None:
        self.stop.set()
        if self.tracker.pending:
            log.warning(
                "executor: %d sent transactions still pending at close (see the journal)",
                len(self.tracker.pending),
            )
        self.channel.close()
        self.journal.close()
        if self.link is not None:
            self.link.close()
        if self.pool is not None:
            self.pool.close()
