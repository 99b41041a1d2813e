"""Prometheus metrics of the arena (names: `arena_<area>_<noun>_<unit>`).

Each engine owns an `ArenaMetrics` over its own `CollectorRegistry`, so several engines
(tests, replays) never share counters. `docs/metrics.md` lists every metric.
"""

from __future__ import annotations

from typing import Final, final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from arena.sync_state import LossCause

_LATENCY_BUCKETS: Final = (
    25e-6,
    50e-6,
    100e-6,
    200e-6,
    300e-6,
    500e-6,
    1e-3,
    2e-3,
    5e-3,
    10e-3,
    50e-3,
    0.25,
    1.0,
)


@final
class ArenaMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.blocks_applied = Counter("arena_block_applied", "Committed blocks applied", registry=r)
        self.blocks_reverted = Counter(
            "arena_block_reverted", "Blocks reverted (reorg or revert)", registry=r
        )
        self.blocks_discarded = Counter(
            "arena_block_discarded",
            "Blocks or messages discarded, by reason; each marks the arena unsynced",
            ["reason"],
            registry=r,
        )
        self.updates = Counter(
            "arena_stream_updates",
            "Pool updates received, by protocol and update variant",
            ["protocol", "kind"],
            registry=r,
        )
        self.updates_ignored = Counter(
            "arena_stream_updates_ignored",
            "Pool updates not applied to state, by reason (unknown pool, unmodelled protocol)",
            ["reason"],
            registry=r,
        )
        self.seq_gaps = Counter(
            "arena_stream_seq_gaps", "stream_seq jumps (messages lost upstream)", registry=r
        )
        self.seq_lost_messages = Counter(
            "arena_stream_lost_messages", "Messages missing inside stream_seq gaps", registry=r
        )
        self.duplicates = Counter(
            "arena_stream_duplicates", "Duplicate messages dropped", registry=r
        )
        self.producer_restarts = Counter(
            "arena_stream_producer_restarts",
            "stream_seq decreases (producer restarted)",
            registry=r,
        )
        self.reorgs = Counter("arena_reorg_envelopes", "Reorg envelopes completed", registry=r)
        self.divergences = Counter(
            "arena_reorg_divergences",
            "Epilogue finals that differed from the arena's state, by pool kind",
            ["kind"],
            registry=r,
        )
        self.stale_marked = Counter(
            "arena_pools_marked_stale", "Pools marked stale, by reason", ["reason"], registry=r
        )
        self.stale_pools = Gauge("arena_pools_stale", "Pools currently stale", registry=r)
        self.coin_pools_excluded = Counter(
            "arena_coin_pools_excluded",
            "Multi-coin pools hydrated but not modelled (tracked, never quoted), by reason",
            ["reason"],
            registry=r,
        )
        self.pools_tracked = Gauge("arena_pools_tracked", "Active modelled pools", registry=r)
        self.synced = Gauge(
            "arena_state_synced",
            "1 when the state is trustworthy; 0 when unsynced or before anything is seeded",
            registry=r,
        )
        self.tip_block = Gauge("arena_state_tip_block", "Block the state is at", registry=r)
        self.ring_blocks = Gauge(
            "arena_ring_blocks", "Blocks held by the snapshot ring", registry=r
        )
        self.ring_bytes = Gauge("arena_ring_bytes", "Bytes preallocated by the ring", registry=r)
        self.spill_blocks = Gauge(
            "arena_spill_blocks", "Blocks held by the RocksDB spill", registry=r
        )
        self.state_writes = Counter(
            "arena_state_file_writes",
            "State files written (--state-out), by outcome",
            ["outcome"],
            registry=r,
        )
        self.apply_seconds = Histogram(
            "arena_block_apply_seconds",
            "Time to apply a committed block, pre-images included",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.revert_seconds = Histogram(
            "arena_block_revert_seconds",
            "Time to revert one block",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.synced.set(0)

    def count_discard(self, cause: LossCause) -> None:
        self.blocks_discarded.labels(reason=cause.value).inc()
