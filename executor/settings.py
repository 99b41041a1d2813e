"""The executor's settings: one frozen struct, the same for `arena execute` and for an
executor attached to `arena run` (`OpportunityExecutor.open(settings)`).

The sending key is never a setting: only where to read it (`key_file`, or the
environment variable ARENA_EXECUTOR_KEY when `key_file` is None); the same holds for the
relays' auth key (`relay_auth_key_file`, else ARENA_RELAY_AUTH_KEY).
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
    receipt_poll_s: float = 0.05
    channel: str = "mempool"  # "mempool" (eth_sendRawTransaction) or "bundle" (relays)
    relays: tuple[str, ...] = ()  # bundle relay URLs; each gets every bundle
    relay_auth_key_file: str | None = None  # None: $ARENA_RELAY_AUTH_KEY
    bundle_blocks: int = 2  # a bundle targets the next this many blocks
    confirm_depth: int = 2  # blocks on top of the including one before `confirmed`
    drop_after_blocks: int = 5  # a public transaction not mined after this many: dropped

    def cap_for(self, start_token: str) -> int | None:
        wanted = start_token.lower()
        for token, cap in self.max_amount_in.items():
            if token.lower() == wanted:
                return cap
        return None
