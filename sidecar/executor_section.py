"""The `[executor]` section: the executor attached to `arena run`, and `arena execute`'s
settings — one field, one flag, one meaning for both commands.

The sending key is never a setting: only where to read it (`key_file`, with
`password_file` for a keystore), or the environment variable the executor reads
(`executor.keys.KEY_ENV_VAR`) when `key_file` is unset. The defaults are the
executor's own (`executor.settings.ExecutorSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from executor.channels.auth import AUTH_KEY_ENV_VAR
from executor.keys import KEY_ENV_VAR
from executor.settings import GWEI, ExecutorSettings
from sidecar import setting_values as v
from sidecar.setting_fields import EXECUTE, RUN, setting

_DEFAULTS: Final = ExecutorSettings(rpc_url="", executor="", whitelist="", journal="")
DEFAULT_QUEUE_BATCHES: Final = 64
DEFAULT_JOURNAL_NAME: Final = "executor-journal.jsonl"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorSection:
    """The executor contract, the sending key's files, dry run or live, fees and caps."""

    enabled: bool = setting(
        False,
        v.SWITCH,
        "--execute",
        "attach the executor to every batch of opportunities",
        RUN,
    )
    rpc_url: str | None = setting(
        None,
        v.URL,
        "--executor-rpc",
        "node JSON-RPC the executor reads and sends through, one URL or several separated "
        "by commas: reads fail over across them, transactions go to the first only "
        "(unset: [rpc] url)",
        RUN,
        EXECUTE,
        metavar="URL",
        env="ARENA_EXECUTOR_RPC_URL",
    )
    contract: bytes | None = setting(
        None,
        v.ADDRESS,
        "--executor",
        "the deployed ArenaExecutor contract's address (required by the executor)",
        RUN,
        EXECUTE,
        metavar="0x…",
    )
    key_file: Path | None = setting(
        None,
        v.KEY_PATH,
        "--key-file",
        f"the sending key's file: hex, or a keystore JSON (unset: ${KEY_ENV_VAR})",
        RUN,
        EXECUTE,
        metavar="FILE",
    )
    password_file: Path | None = setting(
        None,
        v.KEY_PATH,
        "--password-file",
        "the keystore's password file",
        RUN,
        EXECUTE,
        metavar="FILE",
    )
    live: bool = setting(
        False,
        v.SWITCH,
        "--live",
        "SEND the transactions (unset: dry run — build, simulate, journal, send nothing)",
        RUN,
        EXECUTE,
    )
    journal: Path | None = setting(
        None,
        v.PATH,
        "--journal",
        f"attempt journal, appended to (unset: DATA_DIR/{DEFAULT_JOURNAL_NAME} for run; "
        "required by execute)",
        RUN,
        EXECUTE,
        metavar="J.jsonl",
    )
    priority_fee_gwei: int = setting(
        _DEFAULTS.priority_fee_per_gas // GWEI,
        v.NON_NEGATIVE_INT,
        "--priority-fee-gwei",
        "priority fee per gas, in gwei",
        RUN,
        EXECUTE,
        metavar="G",
    )
    gas_margin_percent: int = setting(
        _DEFAULTS.gas_margin_percent,
        v.NON_NEGATIVE_INT,
        "--gas-margin-percent",
        "gas limit = the estimate plus this share",
        RUN,
        EXECUTE,
        metavar="P",
    )
    deadline_blocks: int = setting(
        _DEFAULTS.deadline_blocks,
        v.NON_NEGATIVE_INT,
        "--deadline-blocks",
        "a transaction is void after the latest block plus this many",
        RUN,
        EXECUTE,
        metavar="N",
    )
    min_net_profit: int = setting(
        _DEFAULTS.min_net_profit,
        v.AMOUNT,
        "--min-net-profit",
        "least profit left after gas and the coinbase payment, start-token units",
        RUN,
        EXECUTE,
        metavar="WEI",
    )
    max_amount_in: tuple[v.TokenCap, ...] = setting(
        tuple,
        v.TOKEN_CAP,
        "--max-amount-in",
        "cap on amount_in per start token (repeatable)",
        RUN,
        EXECUTE,
        metavar="TOKEN=AMOUNT",
    )
    coinbase_share_bps: int = setting(
        _DEFAULTS.coinbase_share_bps,
        v.BASIS_POINTS,
        "--coinbase-share-bps",
        "share of the profit paid to the block's coinbase (wrapped native start token only)",
        RUN,
        EXECUTE,
        metavar="BPS",
    )
    wrapped_native: bytes | None = setting(
        None,
        v.ADDRESS,
        "--wrapped-native",
        "the wrapped native token, the only start token a coinbase payment allows",
        RUN,
        EXECUTE,
        metavar="0x…",
    )
    receipt_timeout: float = setting(
        _DEFAULTS.receipt_timeout_s,
        v.SECONDS,
        "--receipt-timeout",
        "seconds a sent transaction's receipt is awaited before it is journaled dropped",
        RUN,
        EXECUTE,
        metavar="S",
    )
    channel: str = setting(
        _DEFAULTS.channel,
        v.CHANNEL,
        "--channel",
        "live transactions go to: mempool (eth_sendRawTransaction to the node) or bundle "
        "(eth_sendBundle to every --relay)",
        RUN,
        EXECUTE,
        metavar="mempool|bundle",
    )
    relays: tuple[str, ...] = setting(
        tuple,
        v.RELAY_URL,
        "--relay",
        "a bundle relay's URL; each gets every bundle (repeatable)",
        RUN,
        EXECUTE,
        metavar="URL",
    )
    relay_auth_key_file: Path | None = setting(
        None,
        v.KEY_PATH,
        "--relay-auth-key-file",
        f"the key signing relay requests, hex (unset: ${AUTH_KEY_ENV_VAR})",
        RUN,
        EXECUTE,
        metavar="FILE",
    )
    bundle_blocks: int = setting(
        _DEFAULTS.bundle_blocks,
        v.POSITIVE_INT,
        "--bundle-blocks",
        "a bundle is sent for each of the next this many blocks",
        RUN,
        EXECUTE,
        metavar="N",
    )
    confirm_depth: int = setting(
        _DEFAULTS.confirm_depth,
        v.NON_NEGATIVE_INT,
        "--confirm-depth",
        "blocks on top of the including one before a transaction is confirmed and its "
        "profit counted",
        RUN,
        EXECUTE,
        metavar="N",
    )
    drop_after_blocks: int = setting(
        _DEFAULTS.drop_after_blocks,
        v.POSITIVE_INT,
        "--drop-after-blocks",
        "a public transaction not mined after this many blocks is dropped; its nonce is "
        "freed, or filled by a self-transfer when the node still holds it",
        RUN,
        EXECUTE,
        metavar="N",
    )
    queue_batches: int = setting(
        DEFAULT_QUEUE_BATCHES,
        v.POSITIVE_INT,
        "--executor-queue",
        "batches of opportunities waiting for the executor's thread; beyond, a batch is "
        "dropped, counted and journaled refused",
        RUN,
        metavar="N",
    )
    priority_share_bps: int = setting(
        _DEFAULTS.priority_share_bps,
        v.BASIS_POINTS,
        "--priority-share-bps",
        "share of the profit offered as priority fee (spread over the gas limit; at least "
        "priority_fee_gwei)",
        RUN,
        EXECUTE,
        metavar="BPS",
    )
    max_fee_gwei: int = setting(
        _DEFAULTS.max_fee_per_gas // GWEI,
        v.POSITIVE_INT,
        "--max-fee-gwei",
        "hard cap on the max fee per gas, in gwei: above it nothing is sent",
        RUN,
        EXECUTE,
        metavar="G",
    )
    max_gas_cost: int = setting(
        _DEFAULTS.max_gas_cost,
        v.AMOUNT,
        "--max-gas-cost",
        "hard cap on one transaction's worst-case gas cost (gas limit × max fee), in wei",
        RUN,
        EXECUTE,
        metavar="WEI",
    )
    max_coinbase_share_bps: int = setting(
        _DEFAULTS.max_coinbase_share_bps,
        v.BASIS_POINTS,
        "--max-coinbase-share-bps",
        "hard cap on the coinbase payment's share of the profit",
        RUN,
        EXECUTE,
        metavar="BPS",
    )
    nats_url: str | None = setting(
        None,
        v.URL,
        "--executor-nats",
        "NATS (JetStream) holding the nonce lane several executors share, and the kill "
        "subject (unset: a local lane, no kill subject)",
        RUN,
        EXECUTE,
        metavar="URL",
        env="ARENA_EXECUTOR_NATS_URL",
    )
    lane_dir: Path | None = setting(
        None,
        v.PATH,
        "--lane-dir",
        "directory of the local nonce lane files (unset: nonce-lanes beside the journal)",
        RUN,
        EXECUTE,
        metavar="DIR",
    )
    lane_bucket: str = setting(
        _DEFAULTS.lane_bucket,
        v.TEXT,
        "--lane-bucket",
        "JetStream KV bucket of the shared nonce lanes",
        RUN,
        EXECUTE,
        metavar="NAME",
    )
    lane_lease: float = setting(
        _DEFAULTS.lane_lease_s,
        v.SECONDS,
        "--lane-lease",
        "seconds a reserved nonce stays held without news from its sender; then it is reused",
        RUN,
        EXECUTE,
        metavar="S",
    )
    lane_fallback_local: bool = setting(
        _DEFAULTS.lane_fallback_local,
        v.SWITCH,
        "--lane-fallback-local",
        "when NATS is unreachable, send from a local lane (unset: refuse to send)",
        RUN,
        EXECUTE,
    )
    kill_file: Path | None = setting(
        None,
        v.PATH,
        "--kill-file",
        "while this file exists nothing is sent (until a restart)",
        RUN,
        EXECUTE,
        metavar="FILE",
    )
    kill_subject: str = setting(
        _DEFAULTS.kill_subject,
        v.TEXT,
        "--kill-subject",
        "a message on this NATS subject stops sending (until a restart); needs nats_url",
        RUN,
        EXECUTE,
        metavar="SUBJECT",
    )
    max_reverted: int = setting(
        _DEFAULTS.max_reverted,
        v.NON_NEGATIVE_INT,
        "--max-reverted",
        "reverted transactions tolerated in the loss window; one more stops sending",
        RUN,
        EXECUTE,
        metavar="N",
    )
    max_gas_spent: int = setting(
        _DEFAULTS.max_gas_spent,
        v.AMOUNT,
        "--max-gas-spent",
        "wei of gas tolerated in the loss window; more stops sending",
        RUN,
        EXECUTE,
        metavar="WEI",
    )
    loss_window_blocks: int = setting(
        _DEFAULTS.loss_window_blocks,
        v.POSITIVE_INT,
        "--loss-window-blocks",
        "the loss limits' rolling window, in blocks",
        RUN,
        EXECUTE,
        metavar="N",
    )
