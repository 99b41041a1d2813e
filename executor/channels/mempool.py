"""The public mempool: `eth_sendRawTransaction` to the executor's node."""

from __future__ import annotations

import logging
from typing import final

from executor.chain import ChainClient
from executor.channels.submission import Submission
from executor.errors import ChainRpcError
from executor.outcome_metrics import OutcomeMetrics
from executor.transaction import SignedTransaction

log = logging.getLogger(__name__)


@final
class MempoolChannel:
    name = "mempool"

    def __init__(self, chain: ChainClient, metrics: OutcomeMetrics) -> None:
        self.chain = chain
        self.metrics = metrics

    def submit(self, signed: SignedTransaction, head: int) -> Submission:
        try:
            self.chain.send_raw(signed.raw)
        except ChainRpcError as exc:
            self.metrics.sends.labels(self.name, "refused").inc()
            return Submission(channel=self.name, accepted=False, reason=f"send: {exc}")
        self.metrics.sends.labels(self.name, "accepted").inc()
        return Submission(channel=self.name, accepted=True)

    def withdraw(self, submission: Submission) -> None:
        """A public transaction cannot be withdrawn: only replaced at its nonce."""

    def close(self) -> None:
        pass
