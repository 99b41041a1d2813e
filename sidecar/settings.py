"""The settings of the `arena` commands: one frozen model per component.

Each field carries its `Setting`: the value kind that reads it, the flag that overrides
it, the environment variable for values that may hold credentials, and its help. The
defaults live here and nowhere else (the `[executor]` section's live in
`sidecar.executor_section`, taken from `executor.settings`). `ArenaSettings` holds one
model per section of the configuration file (`[socket]`, `[state]`, …), named by `SECTIONS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final, get_type_hints

from arena.checkpoint import DEFAULT_KEEP
from arena.snapshot_ring import DEFAULT_DEPTH
from arena.spill import DEFAULT_SPILL_DEPTH
from exex_bridge.framing import DEFAULT_MAX_FRAME
from exex_bridge.socket_source import DEFAULT_SOCKET_PATH
from pathfinder.recalculator import PathfinderConfig
from sidecar import setting_values as v
from sidecar.executor_section import ExecutorSection
from sidecar.setting_fields import (
    EXECUTE,
    GLOBAL,
    RECORD,
    RELAY,
    REPLAY,
    RUN,
    Setting,
    setting,
    setting_of,
)

__all__ = [
    "EXECUTE",
    "GLOBAL",
    "RECORD",
    "RELAY",
    "REPLAY",
    "RUN",
    "SECTIONS",
    "ArenaSettings",
    "CheckpointSettings",
    "EngineSettings",
    "ExecutorSection",
    "JetStreamSettings",
    "MetricsSettings",
    "PathfinderSettings",
    "RelaySettings",
    "RpcSettings",
    "ServiceSettings",
    "Setting",
    "SocketSettings",
    "StateSettings",
    "WhitelistFeedSettings",
    "setting",
    "setting_of",
]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "pool-state-arena"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class SocketSettings:
    """The ExEx socket the stream is read from."""

    path: str = setting(
        DEFAULT_SOCKET_PATH, v.TEXT, "--socket", "ExEx socket", RUN, RECORD, RELAY, metavar="PATH"
    )
    owners: tuple[v.SocketOwner, ...] = setting(
        tuple,
        v.SOCKET_OWNER,
        "--socket-owner",
        "accepted owner of the socket: uid, user name or any (no check); repeatable; "
        "none given: you or root",
        RUN,
        RECORD,
        RELAY,
        metavar="UID|NAME|any",
    )
    connect_timeout: float | None = setting(
        None,
        v.SECONDS,
        "--connect-timeout",
        "give up if the first connection fails this long (unset: keep retrying)",
        RUN,
        RECORD,
        RELAY,
        metavar="SECONDS",
    )
    max_frame_size: int = setting(
        DEFAULT_MAX_FRAME,
        v.POSITIVE_INT,
        "--max-frame-size",
        "a longer length prefix drops the connection",
        RUN,
        RECORD,
        RELAY,
        metavar="BYTES",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class StateSettings:
    """The pools to model, where their state starts and where it is written."""

    whitelist: Path | None = setting(
        None,
        v.PATH,
        "--whitelist",
        "pools to model: a whitelist.pools.{chain}.full JSON document (required)",
        RUN,
        REPLAY,
        EXECUTE,
        metavar="W.json",
    )
    initial_state: Path | None = setting(
        None,
        v.PATH,
        "--initial-state",
        "seed the pools from a state file (as written by --state-out) before the stream",
        RUN,
        REPLAY,
        metavar="S0.json",
    )
    state_out: Path | None = setting(
        None,
        v.PATH,
        "--state-out",
        "write the final state here (atomic)",
        RUN,
        REPLAY,
        metavar="S.json",
    )
    every: int = setting(
        0,
        v.NON_NEGATIVE_INT,
        "--state-every",
        "also write the state out every N settled blocks (0: only at exit)",
        RUN,
        metavar="N",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """The in-memory ring of pre-images and the RocksDB spill below it."""

    ring_depth: int = setting(
        DEFAULT_DEPTH,
        v.RING_DEPTH,
        "--ring-depth",
        "blocks of pre-images kept in memory",
        RUN,
        REPLAY,
        metavar="BLOCKS",
    )
    spill_path: Path | None = setting(
        None,
        v.PATH,
        "--spill-path",
        "RocksDB spill directory (unset: DATA_DIR/spill for run, a temporary one for replay)",
        RUN,
        REPLAY,
        metavar="DIR",
    )
    spill_depth: int = setting(
        DEFAULT_SPILL_DEPTH,
        v.NON_NEGATIVE_INT,
        "--spill-depth",
        "blocks kept in RocksDB below the ring (0: no spill)",
        RUN,
        REPLAY,
        metavar="BLOCKS",
    )
    data_dir: Path = setting(
        default_data_dir,
        v.PATH,
        "--data-dir",
        "where the spill and the checkpoints live unless given their own paths",
        RUN,
        metavar="DIR",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointSettings:
    """Whole-state RocksDB checkpoints, and resuming from the latest one."""

    every: int = setting(
        0,
        v.NON_NEGATIVE_INT,
        "--checkpoint-every",
        "checkpoint the whole state every N trustworthy blocks and at a clean stop (0: never)",
        RUN,
        metavar="N",
    )
    path: Path | None = setting(
        None,
        v.PATH,
        "--checkpoint-path",
        "RocksDB checkpoint directory (unset: DATA_DIR/checkpoints)",
        RUN,
        metavar="DIR",
    )
    keep: int = setting(
        DEFAULT_KEEP,
        v.POSITIVE_INT,
        "--checkpoint-keep",
        "checkpoints retained",
        RUN,
        metavar="K",
    )
    resume: bool = setting(
        False,
        v.SWITCH,
        "--resume",
        "start from the latest checkpoint (else from the initial state, if given)",
        RUN,
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSettings:
    """The Prometheus metrics server."""

    port: int | None = setting(
        None,
        v.PORT,
        "--metrics-port",
        "serve Prometheus metrics on this port, and `arena run`'s /healthz and /readyz (0: any "
        "free port; unset: not served)",
        RUN,
        REPLAY,
        RELAY,
        metavar="P",
    )
    addr: str = setting(
        "127.0.0.1",
        v.TEXT,
        "--metrics-addr",
        "address the metrics server binds",
        RUN,
        REPLAY,
        RELAY,
        metavar="ADDR",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RpcSettings:
    """The node's JSON-RPC: hydration of pools and resync after a loss."""

    url: str | None = setting(
        None,
        v.URL,
        "--rpc",
        "node JSON-RPC, one URL or several separated by commas (http(s):// or ws(s)://): "
        "hydrate every pool at N-1 when the first block N arrives, resync after a loss, "
        "hydrate pools added mid-stream (unset: none); the executor's node unless "
        "[executor] rpc_url is given",
        RUN,
        EXECUTE,
        metavar="URL",
        env="ARENA_RPC_URL",
    )
    rate_limit: int = setting(
        50,
        v.POSITIVE_INT,
        "--rpc-rate-limit",
        "requests per second sent to each endpoint of --rpc at most (a token bucket)",
        RUN,
        metavar="N",
    )
    timeout: float = setting(
        10.0,
        v.SECONDS,
        "--rpc-timeout",
        "one request to one endpoint fails after this long",
        RUN,
        metavar="SECONDS",
    )
    retries: int = setting(
        2,
        v.NON_NEGATIVE_INT,
        "--rpc-retries",
        "a failed read is tried again this often, on the next best endpoint (writes never)",
        RUN,
        metavar="N",
    )
    breaker_failures: int = setting(
        5,
        v.POSITIVE_INT,
        "--rpc-breaker-failures",
        "consecutive failures that open an endpoint's circuit breaker",
        RUN,
        metavar="N",
    )
    breaker_cooldown: float = setting(
        30.0,
        v.SECONDS,
        "--rpc-breaker-cooldown",
        "an open breaker lets one probe through after this long",
        RUN,
        metavar="SECONDS",
    )
    health_interval: float = setting(
        15.0,
        v.SECONDS,
        "--rpc-health-interval",
        "eth_blockNumber on every endpoint this often; one behind the others is avoided",
        RUN,
        metavar="SECONDS",
    )
    state_view: bytes | None = setting(
        None,
        v.ADDRESS,
        "--v4-state-view",
        "a v4-periphery StateView contract to hydrate V4 pools through (unset: read the "
        "PoolManager's storage with its own extsload)",
        RUN,
        metavar="ADDRESS",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class WhitelistFeedSettings:
    """Whitelist changes followed on NATS."""

    nats_url: str | None = setting(
        None,
        v.URL,
        "--whitelist-nats",
        "follow whitelist.pools.{chain}.full|add|remove on this NATS server; changes apply "
        "at the next block boundary (with an RPC URL, added pools are hydrated there)",
        RUN,
        metavar="URL",
        env="ARENA_WHITELIST_NATS_URL",
    )
    snapshot_wait: float = setting(
        10.0,
        v.SECONDS,
        "--whitelist-snapshot-wait",
        "at start, how long to wait for the first whitelist.pools.{chain}.full after asking "
        "for it (whitelist.snapshot.request.{chain}); without one the whitelist file is used",
        RUN,
        metavar="SECONDS",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RelaySettings:
    """`arena relay`: the JetStream stream the socket's frames are published to."""

    nats_url: str | None = setting(
        None,
        v.URL,
        "--nats",
        "NATS server with JetStream: the frames go to the stream EXEX_{CHAIN}, subject "
        "exex.{chain}.frames (required)",
        RELAY,
        metavar="URL",
        env="ARENA_RELAY_NATS_URL",
    )
    max_age: float = setting(
        7 * 24 * 3600.0,
        v.SECONDS,
        "--max-age",
        "JetStream drops frames older than this",
        RELAY,
        metavar="SECONDS",
    )
    max_bytes: int = setting(
        8 * 1024**3,
        v.POSITIVE_INT,
        "--max-bytes",
        "JetStream drops the oldest frames beyond this stream size",
        RELAY,
        metavar="BYTES",
    )
    duplicate_window: float = setting(
        120.0,
        v.SECONDS,
        "--duplicate-window",
        "a frame published again within this window is stored once",
        RELAY,
        metavar="SECONDS",
    )
    buffer_frames: int = setting(
        1_000_000,
        v.POSITIVE_INT,
        "--buffer-frames",
        "frames held in memory while JetStream is unreachable; beyond, frames are dropped "
        "and counted",
        RELAY,
        metavar="N",
    )
    batch_frames: int = setting(
        1024,
        v.POSITIVE_INT,
        "--batch-frames",
        "most frames in one JetStream message (a batch is also cut after each settled block)",
        RELAY,
        metavar="N",
    )
    batch_bytes: int = setting(
        512 * 1024,
        v.POSITIVE_INT,
        "--batch-bytes",
        "a JetStream message is cut once its frames reach this size (keep it below the NATS "
        "server's max_payload, 1 MiB by default)",
        RELAY,
        metavar="BYTES",
    )
    linger: float = setting(
        0.003,
        v.SECONDS,
        "--linger",
        "a batch whose first frame waited this long is published without the rest",
        RELAY,
        metavar="SECONDS",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class JetStreamSettings:
    """`arena run` fed by a relay's JetStream stream instead of the socket."""

    url: str | None = setting(
        None,
        v.URL,
        "--jetstream",
        "consume the stream EXEX_{CHAIN} relayed by `arena relay` on this NATS server "
        "instead of the socket (unset: the socket)",
        RUN,
        metavar="URL",
        env="ARENA_JETSTREAM_URL",
    )
    durable: str | None = setting(
        None,
        v.TEXT,
        "--durable",
        "durable consumer name; each arena on one stream needs its own (unset: arena-{chain})",
        RUN,
        metavar="NAME",
    )
    fetch_batch: int = setting(
        256,
        v.POSITIVE_INT,
        "--fetch-batch",
        "messages fetched (and acknowledged) at once",
        RUN,
        metavar="N",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class PathfinderSettings:
    """Where opportunities go, and which cycles are searched."""

    opportunities_out: Path | None = setting(
        None,
        v.PATH,
        "--opportunities-out",
        "append each opportunity to FILE as one JSON object per line",
        RUN,
        REPLAY,
        metavar="FILE",
    )
    nats_url: str | None = setting(
        None,
        v.URL,
        "--nats",
        "publish each opportunity as JSON on the subject arena.{chain}.opportunities",
        RUN,
        REPLAY,
        metavar="URL",
        env="ARENA_NATS_URL",
    )
    chain: str = setting(
        PathfinderConfig().chain,
        v.TEXT,
        "--chain",
        "chain name in opportunities, the NATS subjects and the relayed stream",
        RUN,
        REPLAY,
        RELAY,
        metavar="NAME",
    )
    base_tokens: tuple[bytes, ...] = setting(
        tuple,
        v.BASE_TOKEN,
        "--base-token",
        "cycles start and end at this token (repeatable; none given: the whitelist's WETH)",
        RUN,
        REPLAY,
        metavar="0x…",
    )
    top_k: int = setting(
        PathfinderConfig().top_k,
        v.POSITIVE_INT,
        "--top-k",
        "best screened cycles verified exactly per settled block",
        RUN,
        REPLAY,
        metavar="K",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """The service around the pipeline: stopping, health lines, logging."""

    stop_grace: float = setting(
        2.0,
        v.SECONDS,
        "--stop-grace",
        "on SIGINT/SIGTERM, time the open block gets to complete",
        RUN,
        metavar="SECONDS",
    )
    health_interval: float = setting(
        30.0,
        v.SECONDS,
        "--health-interval",
        "log a health line this often",
        RUN,
        metavar="SECONDS",
    )
    ready_block_age: float = setting(
        60.0,
        v.SECONDS,
        "--ready-block-age",
        "/readyz answers 503 when the last settled block is older than this (set it to a "
        "few block times of the chain)",
        RUN,
        metavar="SECONDS",
    )
    loop_stall: float = setting(
        10.0,
        v.SECONDS,
        "--loop-stall",
        "/healthz answers 503 when the service's event loop has not ticked for this long "
        "(the node is never waited for on it: resyncs run on a worker thread)",
        RUN,
        metavar="SECONDS",
    )
    log_level: str = setting(
        "INFO",
        v.LOG_LEVEL,
        "--log-level",
        f"log verbosity on stderr ({', '.join(v.LOG_LEVELS)})",
        GLOBAL,
        metavar="LEVEL",
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ArenaSettings:
    """Everything `arena run` reads; `arena replay` and `arena record` read their part."""

    socket: SocketSettings = field(default_factory=SocketSettings)
    state: StateSettings = field(default_factory=StateSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    checkpoints: CheckpointSettings = field(default_factory=CheckpointSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    rpc: RpcSettings = field(default_factory=RpcSettings)
    whitelist_feed: WhitelistFeedSettings = field(default_factory=WhitelistFeedSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    jetstream: JetStreamSettings = field(default_factory=JetStreamSettings)
    pathfinder: PathfinderSettings = field(default_factory=PathfinderSettings)
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    service: ServiceSettings = field(default_factory=ServiceSettings)


SECTIONS: Final[dict[str, type[Any]]] = get_type_hints(ArenaSettings)
