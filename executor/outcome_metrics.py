"""The metrics of what happens to a transaction once built: channel sends, relay
errors, inclusion transitions, realized profit and loss (counted once, at confirmation),
dropped transactions' nonces filled by a self-transfer.

Realized profit has one meaning: the start token's net transfers to the contract in the
receipt of a `confirmed` transaction (decision 0016); the expected profit, at send, is
`executor.metrics`' `arena_executor_expected_profit_total`. Both are labelled `token`."""

from __future__ import annotations

from typing import final

from prometheus_client import CollectorRegistry, Counter


@final
class OutcomeMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.sends = Counter(
            "arena_executor_channel_sends",
            "transactions handed to a channel, by channel (mempool, bundle) and outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.relay_errors = Counter(
            "arena_executor_relay_errors",
            "requests a bundle relay refused or failed, by relay and method",
            ["relay", "method"],
            registry=registry,
        )
        self.transitions = Counter(
            "arena_executor_inclusion_transitions",
            "inclusion state transitions of sent transactions, by the state entered",
            ["state"],
            registry=registry,
        )
        self.realized_profit = Counter(
            "arena_executor_realized_profit",
            "profit of confirmed transactions, start-token units, by start token",
            ["token"],
            registry=registry,
        )
        self.realized_loss = Counter(
            "arena_executor_realized_loss",
            "loss (negative realized profit) of confirmed transactions, by start token",
            ["token"],
            registry=registry,
        )
        self.nonce_fills = Counter(
            "arena_executor_nonce_fills",
            "dropped transactions' nonces filled by a self-transfer at a bumped fee, by outcome",
            ["outcome"],
            registry=registry,
        )
