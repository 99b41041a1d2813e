"""What inclusion tracking hands back to the sending key's nonce lane.

A sent transaction's nonce was confirmed in the lane when its channel accepted it
(`executor.lane_sender`). Inclusion then decides its fate:

- `confirmed` or `reverted` (mined, final): confirmed again — nothing else to do;
- `reorged`: the lane resyncs from the node's pending count (a local lane nobody holds a
  lease on restarts there; the shared lane only moves forward); when the re-simulated
  transaction is re-sent, its nonce is confirmed again (a re-sent bundle is not in the
  node's count);
- `dropped`: the nonce must not stay a gap, and must not be reused while the dropped
  transaction can still be mined.
  - The node's count already covers it (something was mined with it): used — confirmed.
  - A public transaction the node still holds (it may be mined later): the nonce is
    filled by a self-transfer at fees at least 10 % higher (`LaneSender.fill`), which
    replaces it; the nonce stays used.
  - Otherwise (a bundle past its target blocks, or a public transaction the node no
    longer has): released in the lane, local or NATS KV, and the next reservation
    reuses it.

Every fill is counted (`arena_executor_nonce_fills_total{outcome}`) and logged once;
when the fill is not accepted the nonce is left as the node has it (the lane resyncs).
"""

from __future__ import annotations

import logging
from typing import final

from executor.chain import ChainClient
from executor.errors import ChainRpcError
from executor.lane_sender import LaneSender, SendStatus
from executor.outcome_metrics import OutcomeMetrics
from executor.transaction import SignedTransaction

log = logging.getLogger(__name__)


@final
class NonceOutcomes:
    """The lane side of inclusion; `sender` None (dry run): nothing was sent, no-ops."""

    def __init__(
        self, chain: ChainClient, sender: LaneSender | None, metrics: OutcomeMetrics
    ) -> None:
        self.chain = chain
        self.sender = sender
        self.metrics = metrics

    def used(self, nonce: int) -> None:
        """Mined, or re-sent after a reorg: the nonce is taken (again)."""
        if self.sender is not None:
            self.sender.settle(self.sender.lane.confirm, nonce)

    def reorged(self) -> None:
        if self.sender is not None:
            self.sender.resync_after_reorg()

    def dropped(self, signed: SignedTransaction, channel: str) -> str:
        """Settles a dropped transaction's nonce; what was done, for the journal."""
        sender = self.sender
        nonce = signed.transaction.nonce
        if sender is None:
            return f"nonce {nonce} not from a lane"
        tx_hash = "0x" + signed.tx_hash.hex()
        try:
            mined_count = self.chain.nonce(sender.key.address, "latest")
            held = channel == "mempool" and self.chain.transaction(tx_hash) is not None
        except ChainRpcError as exc:
            log.warning("nonce %d of dropped %s left to the lease: %s", nonce, tx_hash, exc)
            return f"nonce {nonce} unsettled (node: {exc})"
        if mined_count > nonce:
            sender.settle(sender.lane.confirm, nonce)
            return f"nonce {nonce} used on chain"
        if not held:
            sender.settle(sender.lane.release, nonce)
            return f"nonce {nonce} released to the lane"
        return self._fill(sender, signed)

    def _fill(self, sender: LaneSender, signed: SignedTransaction) -> str:
        nonce = signed.transaction.nonce
        try:
            _, base_fee = self.chain.latest_header()
        except ChainRpcError as exc:
            self.metrics.nonce_fills.labels("failed").inc()
            log.warning("nonce %d not filled: %s", nonce, exc)
            return f"nonce {nonce} not filled (node: {exc})"
        result = sender.fill(signed, base_fee)
        if result.status is SendStatus.ACCEPTED:
            self.metrics.nonce_fills.labels("sent").inc()
            log.warning(
                "nonce %d of dropped %s filled by self-transfer %s",
                nonce,
                "0x" + signed.tx_hash.hex(),
                result.tx_hash,
            )
            sender.settle(sender.lane.confirm, nonce)
            return f"nonce {nonce} filled by self-transfer {result.tx_hash}"
        self.metrics.nonce_fills.labels("failed").inc()
        log.warning("nonce %d not filled: %s", nonce, result.reason)
        sender.resync_quietly()
        return f"nonce {nonce} not filled: {result.reason}"
