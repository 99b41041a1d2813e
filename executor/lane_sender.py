"""Signing and sending through a nonce lane, with the node's answers told apart.

`send` reserves a nonce, signs and sends. What the node answers decides the nonce's fate:

- a hash: accepted — the nonce is confirmed;
- "already known" / "already imported": the node has this very transaction — accepted;
- "nonce too low": something else used the nonce — confirmed, the lane resynced, and the
  transaction sent again once with a new nonce;
- "replacement transaction underpriced": another pending transaction holds the nonce —
  as "nonce too low";
- any other error answer: refused before acceptance — the nonce is released (the next
  reservation reuses it: no gap);
- no answer (timeout, connection lost): ambiguous — looked up by hash: confirmed when the
  node has it, else released; the lane is resynced from the node's pending count.

`replace` re-sends a pending transaction's nonce with fees raised by at least 10 % (the
rule geth and reth apply); a replacement below it is refused here, nothing is sent and
no nonce is reserved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Final, final

import msgspec

from executor.chain import ChainClient
from executor.errors import ChainRpcError
from executor.fee_policy import is_valid_replacement, replacement_fees
from executor.keys import SigningKey
from executor.metrics import ExecutionMetrics
from executor.nonce_lane import NonceLane
from executor.shared_lane import LaneUnavailableError
from executor.transaction import SignedTransaction, UnsignedTransaction, sign_transaction

log = logging.getLogger(__name__)

SEND_TRIES: Final = 2


class SendErrorKind(StrEnum):
    NONCE_TOO_LOW = "nonce_too_low"
    ALREADY_KNOWN = "already_known"
    REPLACEMENT_UNDERPRICED = "replacement_underpriced"
    REJECTED = "rejected"  # refused before acceptance
    AMBIGUOUS = "ambiguous"  # no answer


_PATTERNS: Final = (
    (SendErrorKind.NONCE_TOO_LOW, ("nonce too low", "nonce is too low")),
    (SendErrorKind.ALREADY_KNOWN, ("already known", "already imported", "already exists")),
    (SendErrorKind.REPLACEMENT_UNDERPRICED, ("replacement transaction underpriced",)),
)


def classify_send_error(exc: ChainRpcError) -> SendErrorKind:
    if exc.transport:
        return SendErrorKind.AMBIGUOUS
    text = exc.reason.lower()
    for kind, phrases in _PATTERNS:
        if any(phrase in text for phrase in phrases):
            return kind
    return SendErrorKind.REJECTED


class SendStatus(StrEnum):
    ACCEPTED = "accepted"  # the node holds the transaction
    REJECTED = "rejected"  # the node refused it; its nonce is free again
    REFUSED = "refused"  # not sent (no nonce, a replacement below the rule)


class SendResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    status: SendStatus
    signed: SignedTransaction | None = None
    reason: str = ""
    kind: str = ""  # metrics label: a SendErrorKind value or lane_unavailable

    @property
    def tx_hash(self) -> str:
        return "" if self.signed is None else "0x" + self.signed.tx_hash.hex()


@final
class LaneSender:
    def __init__(
        self,
        chain: ChainClient,
        key: SigningKey,
        lane: NonceLane,
        metrics: ExecutionMetrics | None = None,
    ) -> None:
        self.chain = chain
        self.key = key
        self.lane = lane
        self.metrics = metrics or ExecutionMetrics()
        self.lane_down = False

    def sign(self, tx: UnsignedTransaction) -> SignedTransaction:
        with self.metrics.stage("sign"):
            return sign_transaction(tx, self.key)

    def send(self, tx: UnsignedTransaction) -> SendResult:
        """Reserve a nonce, sign `tx` with it, send; the nonce is never lost."""
        last = SendResult(status=SendStatus.REFUSED, reason="not sent")
        for _ in range(SEND_TRIES):
            try:
                nonce = self.lane.reserve()
            except LaneUnavailableError as exc:
                self._count("lane_unavailable")
                if not self.lane_down:  # once per outage; each refusal is journaled
                    log.error("not sending until the nonce lane is back: %s", exc)
                self.lane_down = True
                return SendResult(
                    status=SendStatus.REFUSED, reason=str(exc), kind="lane_unavailable"
                )
            if self.lane_down:
                log.warning("nonce lane back: sending again")
                self.lane_down = False
            signed = self.sign(msgspec.structs.replace(tx, nonce=nonce))
            last = self._submit(signed)
            if last.kind not in (
                SendErrorKind.NONCE_TOO_LOW,
                SendErrorKind.REPLACEMENT_UNDERPRICED,
            ):
                return last
        return last

    def _submit(self, signed: SignedTransaction) -> SendResult:
        nonce = signed.transaction.nonce
        tx_hash = "0x" + signed.tx_hash.hex()
        try:
            with self.metrics.stage("submit"):
                self.chain.send_raw(signed.raw)
        except ChainRpcError as exc:
            return self._after_error(signed, tx_hash, exc)
        self._settle(self.lane.confirm, nonce)
        return SendResult(status=SendStatus.ACCEPTED, signed=signed)

    def _after_error(
        self, signed: SignedTransaction, tx_hash: str, exc: ChainRpcError
    ) -> SendResult:
        nonce = signed.transaction.nonce
        kind = classify_send_error(exc)
        self._count(kind)
        log.warning("send of nonce %d: %s (%s)", nonce, exc, kind)
        if kind is SendErrorKind.ALREADY_KNOWN:
            self._settle(self.lane.confirm, nonce)
            return SendResult(status=SendStatus.ACCEPTED, signed=signed, kind=kind)
        rejected = SendResult(status=SendStatus.REJECTED, signed=signed, reason=str(exc), kind=kind)
        if kind in (SendErrorKind.NONCE_TOO_LOW, SendErrorKind.REPLACEMENT_UNDERPRICED):
            self._settle(self.lane.confirm, nonce)
            self.resync_quietly()
            return rejected
        if kind is SendErrorKind.REJECTED:
            self._settle(self.lane.release, nonce)
            return rejected
        try:
            known = self.chain.transaction(tx_hash) is not None
        except ChainRpcError as lookup:
            # Unknown fate: the lease stays; once it expires the nonce is reused, and a
            # node that did accept the transaction answers "nonce too low" then.
            log.warning("nonce %d left leased: %s", nonce, lookup)
            return rejected
        if known:
            self._settle(self.lane.confirm, nonce)
            self.resync_quietly()
            return SendResult(status=SendStatus.ACCEPTED, signed=signed, kind=kind)
        self._settle(self.lane.release, nonce)
        self.resync_quietly()
        return rejected

    def _settle(self, action: Callable[[int], None], nonce: int) -> None:
        """Confirm or release; when the lane cannot be reached the lease stays and
        expires (then the nonce is reused, and a node that holds it says so)."""
        try:
            action(nonce)
        except LaneUnavailableError as exc:
            self._count("lane_unavailable")
            log.warning("nonce %d left leased: %s", nonce, exc)

    def resync_after_reorg(self) -> None:
        log.info("reorg: nonce lane resynced from the node's pending count")
        self.resync_quietly()

    def resync_quietly(self) -> None:
        """`lane.resync()`; a failure is logged (the next error resyncs again)."""
        try:
            self.lane.resync()
        except (ChainRpcError, LaneUnavailableError) as exc:
            log.warning("nonce lane not resynced: %s", exc)

    def replace(
        self, previous: SignedTransaction, max_fee_per_gas: int, max_priority_fee_per_gas: int
    ) -> SendResult:
        """The pending `previous` again with new fees (same nonce, no reservation)."""
        old = previous.transaction
        if not is_valid_replacement(
            old.max_fee_per_gas,
            old.max_priority_fee_per_gas,
            max_fee_per_gas,
            max_priority_fee_per_gas,
        ):
            least_max, least_tip = replacement_fees(
                old.max_fee_per_gas, old.max_priority_fee_per_gas
            )
            self._count(SendErrorKind.REPLACEMENT_UNDERPRICED)
            return SendResult(
                status=SendStatus.REFUSED,
                reason=f"replacement fees {max_fee_per_gas}/{max_priority_fee_per_gas} below "
                f"the least accepted {least_max}/{least_tip} (+10 % each)",
                kind=SendErrorKind.REPLACEMENT_UNDERPRICED,
            )
        tx = msgspec.structs.replace(
            old, max_fee_per_gas=max_fee_per_gas, max_priority_fee_per_gas=max_priority_fee_per_gas
        )
        signed = self.sign(tx)
        try:
            with self.metrics.stage("submit"):
                self.chain.send_raw(signed.raw)
        except ChainRpcError as exc:
            kind = classify_send_error(exc)
            self._count(kind)
            return SendResult(status=SendStatus.REJECTED, signed=signed, reason=str(exc), kind=kind)
        return SendResult(status=SendStatus.ACCEPTED, signed=signed)

    def bump(self, previous: SignedTransaction) -> SendResult:
        """`replace` with the least accepted fees."""
        old = previous.transaction
        max_fee, tip = replacement_fees(old.max_fee_per_gas, old.max_priority_fee_per_gas)
        return self.replace(previous, max_fee, tip)

    def _count(self, kind: str) -> None:
        self.metrics.lane_errors.labels(kind=kind).inc()
