"""Bundle relays: simulate with `eth_callBundle`, then `eth_sendBundle` to every relay
for each of the next `blocks` blocks, one `replacementUuid` for all of them.

A bundle whose simulation holds a revert is not sent: the submission is refused with the
revert, decoded. Simulation asks the relays in order until one answers. Each relay
error is logged once and counted (`arena_executor_relay_errors{relay, method}`); the
bundle is accepted when at least one relay took it for at least one block.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, final

from executor.channels.relay import RelayClient
from executor.channels.submission import Submission
from executor.errors import RelayError
from executor.interface import describe_revert
from executor.outcome_metrics import OutcomeMetrics
from executor.transaction import SignedTransaction

log = logging.getLogger(__name__)


def simulation_revert(result: dict[str, Any]) -> str | None:
    """The first failing transaction of an `eth_callBundle` result, described; None
    when every transaction succeeded."""
    for index, outcome in enumerate(result.get("results", [])):
        if not isinstance(outcome, dict) or not outcome.get("error"):
            continue
        revert = outcome.get("revert")
        what = str(outcome["error"])
        if isinstance(revert, str) and revert.startswith("0x") and len(revert) > 2:
            try:
                what = describe_revert(bytes.fromhex(revert[2:]))
            except ValueError:
                what = f"{what} ({revert[:74]})"
        return f"tx {index}: {what}"
    return None


@final
class BundleChannel:
    name = "bundle"

    def __init__(self, relays: Sequence[RelayClient], blocks: int, metrics: OutcomeMetrics) -> None:
        if not relays:
            raise ValueError("a bundle channel needs at least one relay")
        self.relays = tuple(relays)
        self.blocks = blocks
        self.metrics = metrics

    def _error(self, relay: RelayClient, exc: RelayError) -> str:
        self.metrics.relay_errors.labels(relay.name, exc.method).inc()
        log.warning("bundle: %s (code %s)", exc, exc.code)
        return str(exc)

    def _refused(self, outcome: str, reason: str) -> Submission:
        self.metrics.sends.labels(self.name, outcome).inc()
        return Submission(channel=self.name, accepted=False, reason=reason)

    def submit(self, signed: SignedTransaction, head: int) -> Submission:
        txs = [signed.raw]
        errors: list[str] = []
        for relay in self.relays:
            try:
                result = relay.call_bundle(txs, head + 1, head)
            except RelayError as exc:
                errors.append(self._error(relay, exc))
                continue
            revert = simulation_revert(result)
            if revert is not None:
                return self._refused("simulation_reverted", f"bundle simulation reverted: {revert}")
            break
        else:
            return self._refused("relay_error", "no relay simulated it: " + "; ".join(errors))
        replacement = str(uuid.uuid4())
        first, last = head + 1, head + self.blocks
        accepted: list[str] = []
        for relay in self.relays:
            try:
                for block in range(first, last + 1):
                    relay.send_bundle(txs, block, replacement)
            except RelayError as exc:
                errors.append(self._error(relay, exc))
                continue
            accepted.append(relay.name)
        if not accepted:
            return self._refused("relay_error", "no relay took it: " + "; ".join(errors))
        self.metrics.sends.labels(self.name, "accepted").inc()
        return Submission(
            channel=self.name,
            accepted=True,
            reason="; ".join(errors),
            first_block=first,
            last_block=last,
            bundle_uuid=replacement,
            relays=tuple(accepted),
        )

    def withdraw(self, submission: Submission) -> None:
        """`eth_cancelBundle` at every relay that took it (its remaining target blocks)."""
        if submission.bundle_uuid is None:
            return
        for relay in self.relays:
            if relay.name not in submission.relays:
                continue
            try:
                relay.cancel_bundle(submission.bundle_uuid)
            except RelayError as exc:
                self._error(relay, exc)

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
