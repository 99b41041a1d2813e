"""The executor's settings: one frozen struct, the same for `arena execute` and for an
executor attached to `arena run` (`OpportunityExecutor.open(settings)`).

The sending key is never a setting: only where to read it (`key_file`, or the
environment variable ARENA_EXECUTOR_KEY when `key_file` is None).
"""

from __future__ import annotations

from typing import Final

import msgspec

GWEI: Final = 10**9


class ExecutorSettings(msgspec.Struct, frozen=True, kw_only=True):
    rpc_url: str
    executor: str  # the deployed ArenaExecutor's address
    whitelist: str  # whitelist file: which pools are V2 pairs and which V3 pools
    journal: str  # JSONL file, appended to
    key_file: str | None = None  # hex key or keystore JSON; None: $ARENA_EXECUTOR_KEY
    password_file: str | None = None  # for a keystore key file
    live: bool = False  # False: build, simulate and journal; send nothing
    priority_fee_per_gas: int = 1 * GWEI
    gas_margin_percent: int = 25  # gas limit = eth_estimateGas × (1 + margin)
    estimate_gas_cap: int = 3_000_000  # the gas given to eth_estimateGas itself
    deadline_blocks: int = 2  # the transaction is void after latest + this many blocks
    min_net_profit: int = 1  # start-token units, after gas and the coinbase payment
    max_amount_in: dict[str, int] = msgspec.field(default_factory=dict)  # start token -> cap
    coinbase_share_bps: int = 0  # share of the profit paid to the block's coinbase
    wrapped_native: str | None = None  # the only start token a coinbase payment allows
    receipt_timeout_s: float = 60.0
    # fee policy (executor/fee_policy.py); priority_fee_per_gas is the priority fee's floor
    priority_share_bps: int = 0  # share of the profit offered as priority fee
    max_fee_per_gas: int = 500 * GWEI  # hard cap
    max_gas_cost: int = 10**17  # hard cap on gas limit × max fee per gas, wei
    max_coinbase_share_bps: int = 9_000  # hard cap on the coinbase payment's share
    # nonce lanes (executor/nonce_lane.py, executor/shared_lane.py)
    lane_dir: str | None = None  # local lane files; None: "nonce-lanes" beside the journal
    nats_url: str | None = None  # shared lane (JetStream KV) and kill subject; None: local
    lane_bucket: str = "arena-nonce-lanes"
    lane_lease_s: float = 30.0  # a reserved nonce not reported by then is reused
    lane_fallback_local: bool = False  # NATS down: send from a local lane (else refuse)
    # guards (executor/kill_switch.py, executor/loss_limits.py)
    kill_file: str | None = None
    kill_subject: str = "arena.executor.kill"
    max_reverted: int = 3  # reverted transactions tolerated per loss window
    max_gas_spent: int = 10**17  # wei of gas tolerated per loss window
    loss_window_blocks: int = 100
    receipt_poll_s: float = 0.05

    def cap_for(self, start_token: str) -> int | None:
        wanted = start_token.lower()
        for token, cap in self.max_amount_in.items():
            if token.lower() == wanted:
                return cap
        return None
