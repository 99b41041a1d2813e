"""The executor as an opportunity sink: select, build, simulate, sign, (send), journal.

`OpportunityExecutor` has the sinks' interface (`__call__(opportunities)`, `close()`),
so the same object serves `arena execute` and, as one more sink on its own thread
(`executor.worker.ExecutorThread`), `arena run` with `[executor] enabled = true`.

Without `settings.live` nothing is sent: each chosen opportunity is built, simulated,
signed and journaled as `simulated`. Live, each transaction is handed to the channel
(`executor.channels`: the public mempool, or bundle relays) and followed until it is
mined or dropped (bounded by `receipt_timeout_s`); later transitions (confirmed, reorged)
are journaled as later polls see them (`executor.inclusion_tracker`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Self, final

from prometheus_client import CollectorRegistry

from executor.attempt import AttemptBuilder, ChainHead, Prepared, Refusal, revert_reason
from executor.chain import ChainClient
from executor.channels.auth import load_auth_key
from executor.channels.bundle import BundleChannel
from executor.channels.mempool import MempoolChannel
from executor.channels.relay import RelayClient
from executor.channels.submission import Channel
from executor.errors import ChainRpcError, ContractError, ExecutorError
from executor.inclusion import ChainNonceLane, InclusionState, InclusionTrack, NonceLane
from executor.inclusion_tracker import InclusionTracker, TrackedAttempt
from executor.interface import decode_profit
from executor.journal import AttemptStatus, JournalEntry, JournalWriter
from executor.keys import SigningKey, load_signing_key
from executor.outcome_metrics import OutcomeMetrics
from executor.route import HopKinds
from executor.selection import select_non_conflicting
from executor.settings import ExecutorSettings
from executor.transaction import SignedTransaction, sign_transaction
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
        channel: Channel | None = None,
        lane: NonceLane | None = None,
        metrics: OutcomeMetrics | None = None,
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
        self.metrics = metrics or OutcomeMetrics(CollectorRegistry())
        self.channel = channel or MempoolChannel(chain, self.metrics)
        self.lane = lane or ChainNonceLane(chain, key.address)
        self.tracker = InclusionTracker(
            chain,
            executor=settings.executor,
            channel=self.channel,
            lane=self.lane,
            metrics=self.metrics,
            record=self._record_transition,
            resimulate=self.resimulate,
        )

    @classmethod
    def open(
        cls,
        settings: ExecutorSettings,
        registry: CollectorRegistry | None = None,
        lane: NonceLane | None = None,
    ) -> Self:
        """Load the key and the whitelist, and check the node and the contract."""
        key = load_signing_key(settings.key_file, settings.password_file)
        chain = ChainClient(settings.rpc_url)
        chain_id = chain.chain_id()
        executor = parse_address(settings.executor, "executor")
        if not chain.code(executor):
            raise ContractError("executor", f"no contract at {settings.executor}")
        kinds = HopKinds(load_whitelist_file(settings.whitelist).pools)
        metrics = OutcomeMetrics(registry or CollectorRegistry())
        channel = open_channel(settings, chain, metrics)
        mode = "LIVE" if settings.live else "dry run"
        log.info(
            "executor %s from %s (%s, %s)", settings.executor, key.address_hex, mode, channel.name
        )
        return cls(
            settings,
            key=key,
            chain=chain,
            kinds=kinds,
            journal=JournalWriter(settings.journal),
            chain_id=chain_id,
            channel=channel,
            lane=lane,
            metrics=metrics,
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
        self.tracker.poll()
        choices = select_non_conflicting(
            opportunities,
            min_net_profit=self.settings.min_net_profit,
            cap_for=self.settings.cap_for,
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
            nonce = self.lane.next_nonce()
            outcome = self.builder.prepare(opportunity, head, nonce)
        except ExecutorError as exc:
            self._record(opportunity, AttemptStatus.REFUSED, reason=f"node: {exc}")
            return
        if isinstance(outcome, Refusal):
            self.lane.release(nonce)  # a nonce never used goes back to the lane
            self._record(
                opportunity,
                AttemptStatus.REFUSED,
                reason=outcome.reason,
                gas_estimate=outcome.gas_estimate,
                expected_profit=outcome.expected_profit,
            )
            return
        self.send(outcome, head.number)

    def send(self, prepared: Prepared, head: int | None = None) -> None:
        """Sign; journal as simulated (dry run), or hand it to the channel and follow it
        until it is mined or dropped."""
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
        nonce = prepared.transaction.nonce
        if not self.settings.live:
            self.lane.release(nonce)
            self._record(opportunity, AttemptStatus.SIMULATED, reason="dry run", **fields)
            return
        try:
            head = self.chain.block_number() if head is None else head
        except ChainRpcError as exc:
            self.lane.release(nonce)
            self._record(opportunity, AttemptStatus.REFUSED, reason=f"node: {exc}", **fields)
            return
        submission = self.channel.submit(signed, head)
        fields["channel"] = submission.channel
        if not submission.accepted:
            self.lane.release(nonce)
            self._record(opportunity, AttemptStatus.REFUSED, reason=submission.reason, **fields)
            return
        drop_after = self.settings.drop_after_blocks
        if submission.first_block is not None and submission.last_block is not None:
            fields["bundle_uuid"] = submission.bundle_uuid
            fields["target_blocks"] = (submission.first_block, submission.last_block)
            drop_after = submission.last_block - head
        self._record(opportunity, AttemptStatus.SENT, reason=submission.reason, **fields)
        attempt = TrackedAttempt(
            opportunity=opportunity,
            signed=signed,
            submission=submission,
            expected_profit=prepared.expected_profit,
            fields=fields,
            track=InclusionTrack(
                head,
                confirm_depth=self.settings.confirm_depth,
                drop_after_blocks=drop_after,
            ),
        )
        self.tracker.track(attempt)
        self.follow(attempt)

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
            self._record(opportunity, AttemptStatus.REFUSED, reason=reason)

    def _record_transition(
        self, opportunity: Opportunity, state: InclusionState, fields: dict[str, Any]
    ) -> None:
        self._record(opportunity, AttemptStatus(state.value), **fields)

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


def open_channel(
    settings: ExecutorSettings, chain: ChainClient, metrics: OutcomeMetrics
) -> Channel:
    """The channel the settings name; a bundle channel loads the relays' auth key."""
    if settings.channel == "mempool":
        return MempoolChannel(chain, metrics)
    if settings.channel != "bundle":
        raise ContractError("channel", f"{settings.channel!r} is neither mempool nor bundle")
    if not settings.relays:
        raise ContractError("channel", "the bundle channel needs at least one relay URL")
    auth = load_auth_key(settings.relay_auth_key_file)
    relays = [RelayClient(url, auth) for url in settings.relays]
    return BundleChannel(relays, settings.bundle_blocks, metrics)
