"""Inclusion tracking against the node: each sent transaction followed from its receipt
(or its absence) at every new head, every transition journaled and counted.

`poll` asks the node for the head and each pending transaction's receipt, and feeds
`executor.inclusion.InclusionTrack`. On `reorged` (its block left the chain) the exact
transaction is re-simulated at the new tip: only when it still returns the journaled
profit is it handed to its channel again (same bytes, same nonce); otherwise it is not
re-sent, the lane resyncs, and it ends `dropped` after its blocks unless the network
mines it anyway. Realized profit is counted on `confirmed`, once. What each outcome
does to the nonce (confirmed, released, filled by a self-transfer, resynced) is
`executor.nonce_outcomes`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, final

from executor.chain import ChainClient
from executor.channels.submission import Channel, Submission
from executor.errors import ChainRpcError
from executor.inclusion import InclusionState, InclusionTrack, Mined, Transition
from executor.nonce_outcomes import NonceOutcomes
from executor.outcome_metrics import OutcomeMetrics
from executor.receipts import realized_profit
from executor.transaction import SignedTransaction
from pathfinder.opportunity import Opportunity

log = logging.getLogger(__name__)

# (opportunity, the transition, journal fields)
Recorder = Callable[[Opportunity, Transition, dict[str, Any]], None]
# the exact transaction re-simulated at the tip: None when it still pays, else why not
Resimulator = Callable[[SignedTransaction, int], str | None]


@dataclass(kw_only=True)
class TrackedAttempt:
    opportunity: Opportunity
    signed: SignedTransaction
    submission: Submission
    expected_profit: int
    fields: dict[str, Any]  # the journal fields of its `sent` entry
    track: InclusionTrack
    entered: list[InclusionState] = field(default_factory=list)

    @property
    def tx_hash(self) -> str:
        return "0x" + self.signed.tx_hash.hex()

    @property
    def nonce(self) -> int:
        return self.signed.transaction.nonce


@final
class InclusionTracker:
    def __init__(
        self,
        chain: ChainClient,
        *,
        executor: str,
        channel: Channel,
        nonces: NonceOutcomes,
        metrics: OutcomeMetrics,
        record: Recorder,
        resimulate: Resimulator,
    ) -> None:
        self.chain = chain
        self.executor = executor
        self.channel = channel
        self.nonces = nonces
        self.metrics = metrics
        self.record = record
        self.resimulate = resimulate
        self.pending: list[TrackedAttempt] = []
        self.realized: dict[str, int] = {}  # start token -> confirmed realized profit

    def track(self, attempt: TrackedAttempt) -> None:
        self.pending.append(attempt)

    def _mined(self, attempt: TrackedAttempt) -> Mined | None:
        receipt = self.chain.receipt(attempt.tx_hash)
        if receipt is None or receipt.get("blockHash") is None:
            return None
        return Mined(
            block=int(receipt["blockNumber"], 16),
            block_hash=str(receipt["blockHash"]),
            index=int(receipt["transactionIndex"], 16),
            succeeded=receipt.get("status") == "0x1",
            realized_profit=realized_profit(receipt, attempt.opportunity.tokens[0], self.executor),
            gas_used=int(receipt["gasUsed"], 16),
            gas_price=int(receipt.get("effectiveGasPrice", "0x0"), 16),
        )

    def poll(self) -> None:
        """One look at the node: every pending attempt moved as far as it goes."""
        if not self.pending:
            return
        try:
            head = self.chain.block_number()
            for attempt in list(self.pending):
                for move in attempt.track.observe(head, self._mined(attempt)):
                    self._apply(attempt, move, head)
        except ChainRpcError as exc:
            log.warning("inclusion: the node did not answer (%s); next poll retries", exc)
        self.pending = [a for a in self.pending if a.track.pending]

    def drop(self, attempt: TrackedAttempt, reason: str) -> None:
        """Gives up on a sent or reorged attempt (timeout, stopping)."""
        if attempt.track.state in (InclusionState.SENT, InclusionState.REORGED):
            self._apply(attempt, attempt.track.drop(reason), None)
            self.pending = [a for a in self.pending if a.track.pending]

    def _apply(self, attempt: TrackedAttempt, move: Transition, head: int | None) -> None:
        attempt.entered.append(move.state)
        self.metrics.transitions.labels(move.state.value).inc()
        fields = dict(attempt.fields)
        if move.reason:
            fields["reason"] = move.reason
        if move.mined is not None:
            fields.update(
                mined_block=move.mined.block,
                block_hash=move.mined.block_hash,
                tx_index=move.mined.index,
                gas_used=move.mined.gas_used,
                realized_profit=move.mined.realized_profit,
            )
        if move.state is InclusionState.CONFIRMED and move.counted_profit is not None:
            self._count_profit(attempt, move.counted_profit)
        resend: Submission | None = None
        if move.state is InclusionState.REORGED:
            fields.pop("realized_profit", None)
            self.nonces.reorged()
            if attempt.track.state is InclusionState.REORGED:
                resend, outcome = self._resimulate(attempt, head)
            else:
                outcome = "mined again in another block"
            fields["reason"] = f"{move.reason}; {outcome}"
        if move.state is InclusionState.DROPPED:
            self.channel.withdraw(attempt.submission)
            settled = self.nonces.dropped(attempt.signed, attempt.submission.channel)
            fields["reason"] = f"{move.reason}; {settled}" if move.reason else settled
        self.record(attempt.opportunity, move, fields)
        match move.state:
            case InclusionState.CONFIRMED | InclusionState.REVERTED:
                self.nonces.used(attempt.nonce)
            case InclusionState.INCLUDED:
                self.channel.withdraw(attempt.submission)
            case InclusionState.REORGED if resend is not None and head is not None:
                self.nonces.used(attempt.nonce)
                attempt.submission = resend
                if resend.first_block is not None and resend.last_block is not None:
                    attempt.fields["bundle_uuid"] = resend.bundle_uuid
                    attempt.fields["target_blocks"] = (resend.first_block, resend.last_block)
                self._apply(attempt, attempt.track.rebroadcast(head), head)
            case _:
                pass

    def _count_profit(self, attempt: TrackedAttempt, profit: int) -> None:
        token = attempt.opportunity.tokens[0].lower()
        self.realized[token] = self.realized.get(token, 0) + profit
        if profit >= 0:
            self.metrics.realized_profit.labels(token).inc(profit)
        else:
            self.metrics.realized_loss.labels(token).inc(-profit)
            log.warning("inclusion: %s confirmed with a loss of %d", attempt.tx_hash, -profit)

    def _resimulate(
        self, attempt: TrackedAttempt, head: int | None
    ) -> tuple[Submission | None, str]:
        """Re-simulates the reorged transaction; re-sends it only when it still pays.
        (the accepted submission or None, what happened)."""
        if head is None:
            return None, "not re-simulated"
        try:
            refusal = self.resimulate(attempt.signed, attempt.expected_profit)
        except ChainRpcError as exc:
            refusal = f"re-simulation failed: {exc}"
        if refusal is not None:
            log.warning("inclusion: %s reorged out, not re-sent: %s", attempt.tx_hash, refusal)
            return None, f"not re-sent: {refusal}"
        submission = self.channel.submit(attempt.signed, head)
        if not submission.accepted:
            log.warning("inclusion: %s not re-sent: %s", attempt.tx_hash, submission.reason)
            return None, f"re-simulated, but not re-sent: {submission.reason}"
        return submission, "re-simulated: still pays"
