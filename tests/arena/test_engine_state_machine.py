"""The arena engine behind the real block assembler, driven by random producer streams
and compared after every step with the naive reference model.

A canonical chain (`canonical_chain`) generates valid blocks; the stream builder turns
them into the producer's exact messages through the real codec; the assembler and the
engine consume them. The steps: committed blocks (with re-sent duplicates), runs of many
blocks, reorg envelopes and plain reverts of depth 1..200 (through an 8-block ring, a
32-block RocksDB spill and beyond it), lost messages (seq gaps, decode errors), malformed
blocks, stray updates, dropped connections, and resyncs. After every step the engine's
records, tick maps, `state_at` over its whole window, stale set, sync flag, tip and
metrics must equal the model's; whenever the model is synced it must also equal the
canonical chain itself. A twin assembler and engine receive every message with its
encoded frame, so blocks take the columnar path there: after every step the twin must
hold exactly what the reference engine holds (records, tick maps, statuses,
`last_changed`, ring, spill, tip, `changed`, metric samples).
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from arena.block_assembler import AssemblerPhase, BlockAssembler, Settled
from arena.engine import ArenaEngine, PoolStatus
from arena.errors import StateUnavailableError
from arena.history import oldest_answerable_block, state_at
from arena.spill import RocksSpill
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from tests.arena.canonical_chain import PROTOCOL, CanonicalChain, Pool, seed_state
from tests.arena.engine_snapshot import engine_snapshot
from tests.arena.reference_model import Kind, ReferenceArena, Sync, record_bytes
from tests.arena.stream_builder import (
    FRAMING_FAULTS,
    ChainBlock,
    StreamBuilder,
    address,
    block_events,
    producer_affected,
    v4_pool_id,
)

RING_DEPTH = 8
SPILL_DEPTH = 32
START_BLOCK = 1_000

POOLS = [
    Pool(address(0x201), Kind.V2),
    Pool(address(0x202), Kind.V2),
    Pool(address(0x301), Kind.V3),
    Pool(address(0x302), Kind.V3),
    Pool(v4_pool_id(0x401), Kind.V4),
    Pool(v4_pool_id(0x402), Kind.V4),
    Pool(address(0x203), Kind.V2),  # not hydrated at the start: LIVE from its first Sync
]
UNHYDRATED = POOLS[-1]
STATUS = {"live": PoolStatus.LIVE, "stale": PoolStatus.STALE, "unknown": PoolStatus.UNKNOWN}

LOSS_MODES = (
    "gap",
    "decode_error",
    "decode_error_no_seq",
    "num_updates",
    "end_number",
    "update_mismatch",
    "missing_end",
)
# the discard reason each loss counts (decode_error_no_seq: the gap after it is silent)
LOSS_REASON = {
    "gap": "seq_gap",
    "decode_error": "decode_error",
    "decode_error_no_seq": "decode_error",
    "num_updates": "num_updates_mismatch",
    "end_number": "end_block_mismatch",
    "update_mismatch": "update_block_mismatch",
    "missing_end": "begin_inside_block",
}

# Shallow reorgs stay inside the ring; one draw in five goes deeper, up to 200 blocks.
DEPTHS = st.one_of(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(5, 12),
    st.integers(13, 60),
    st.integers(61, 200),
)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def tally(name: str) -> None:
    """A hypothesis event (shown by --hypothesis-show-statistics), when inside a test."""
    if currently_in_test_context():
        event(name)


class EngineMachine(RuleBasedStateMachine):
    spill_depth: int | None = SPILL_DEPTH

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="arena-engine-sm-")
        self.spill = (
            RocksSpill(Path(self.tmp) / "spill", self.spill_depth)
            if self.spill_depth is not None
            else None
        )
        self.engine = ArenaEngine(ring_depth=RING_DEPTH, spill=self.spill, capacity=4)
        self.assembler = BlockAssembler(self.engine)
        self.twin_spill = (
            RocksSpill(Path(self.tmp) / "twin-spill", self.spill_depth)
            if self.spill_depth is not None
            else None
        )
        self.twin = BlockAssembler(
            ArenaEngine(ring_depth=RING_DEPTH, spill=self.twin_spill, capacity=4)
        )
        self.builder = StreamBuilder()
        self.twin.engine.add_pools(p.whitelisted() for p in POOLS)
        added = self.engine.add_pools(p.whitelisted() for p in POOLS)
        self.index = {p.key: i for p, i in zip(POOLS, added, strict=True)}
        self.key_of = {i: k for k, i in self.index.items()}
        kinds = {p.key: p.kind for p in POOLS}
        self.model = ReferenceArena(kinds, ring_depth=RING_DEPTH, spill_depth=self.spill_depth)
        self.chain = CanonicalChain(POOLS, START_BLOCK, {})
        # what the assembler must be doing, and the counters it must have moved
        # a client sees the stream from "now": first, a block boundary
        self.phase = AssemblerPhase.SKIPPING_TO_BOUNDARY
        self.base_fee = 0
        self.sent: list[m.SequencedMessage] = []  # since the last connection reset
        self.seq_known = False  # the assembler holds a last stream_seq to find gaps from
        self.expected: Counter[str] = Counter()

    def teardown(self) -> None:
        for spill in (self.spill, self.twin_spill):
            if spill is not None:
                spill.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- plumbing -----------------------------------------------------------------------
    def feed(self, msgs: Sequence[m.SequencedMessage]) -> list[Settled]:
        settled = []
        for msg in msgs:
            out = self.assembler.feed(msg)
            frame = encode_message(msg) if isinstance(msg, m.PoolUpdate) else None
            assert self.twin.feed(msg, frame) == out
            self.sent.append(msg)
            self.seq_known = True
            if out is not None:
                settled.append(out)
        del self.sent[:-64]
        return settled

    def on_decode_error(self, stream_seq: int | None) -> None:
        self.assembler.on_decode_error(stream_seq)
        self.twin.on_decode_error(stream_seq)

    def resync(self, pools: Sequence[Pool] = POOLS) -> None:
        """What the RPC resync does: every pool's canonical state at the chain tip."""
        for engine in (self.engine, self.twin.engine):
            for pool in pools:
                i, record = self.index[pool.key], self.chain.state[pool.key].record
                if pool.kind is Kind.V2:
                    engine.set_reserves(i, record[0], record[1])
                else:
                    ticks = self.chain.state[pool.key].ticks()
                    engine.set_slot0(i, record[0], record[1], record[2], ticks=ticks)
            engine.mark_synced(self.chain.tip, keep_history=False)
        keys = {p.key for p in pools}
        records = {k: r for k, r in self.chain.records().items() if k in keys}
        self.model.hydrate(records, self.chain.tick_maps(), self.chain.tip)

    def model_commit(self, block: ChainBlock) -> None:
        self.model.commit(block.number, block_events(block))
        self.base_fee = block.base_fee_per_gas
        self.phase = AssemblerPhase.AT_BOUNDARY

    def lose(self, reason: str, *, counted: bool) -> None:
        if counted:
            self.model.discards[reason] += 1
        self.model.mark_unsynced(reason)
        self.phase = AssemblerPhase.SKIPPING_TO_BOUNDARY

    def check_settled(self, settled: list[Settled], block: int, *, after_reorg: bool) -> None:
        assert len(settled) == 1, settled
        s = settled[0]
        assert s.block == block
        assert s.after_reorg is after_reorg
        assert s.sync.value == self.model.sync.value
        assert s.base_fee_per_gas == self.base_fee
        assert {self.key_of[i] for i in s.changed} == self.model.take_changed()

    def send_losing_a_frame(
        self, mode: str, msgs: list[m.SequencedMessage], pos: int
    ) -> bool | None:
        """Send a block whose frame `pos` is lost: dropped upstream (a seq gap) or not
        decodable. Returns whether the loss is counted as a discard; None when nothing
        can notice it (the BeginBlock dropped before any stream_seq to compare with,
        while skipping to a boundary anyway)."""
        at = pos % len(msgs)
        # before its BeginBlock nothing is open
        counted = at > 0 or self.phase is not AssemblerPhase.SKIPPING_TO_BOUNDARY
        # a gap shows at the next frame, unless nothing came since a reset
        gap_seen = at > 0 or self.seq_known
        if mode == "gap":
            self.feed(msgs[:at] + msgs[at + 1 :])
        elif mode == "decode_error":
            self.feed(msgs[:at])
            self.on_decode_error(msgs[at].stream_seq)
            self.seq_known, gap_seen = True, False
            self.feed(msgs[at + 1 :])
        else:  # a frame too broken to read even its stream_seq
            self.feed(msgs[:at])
            self.on_decode_error(None)
            self.feed(msgs[at + 1 :])
        if gap_seen:
            self.expected["seq_gaps"] += 1
            self.expected["lost_messages"] += 1
        elif mode == "gap":
            return None
        return counted

    def commit_one(self, rng: random.Random, dup: int | None = None) -> None:
        block = self.chain.generate(rng)
        msgs = self.builder.committed(block)
        if dup is not None:  # re-send an earlier message of the block right after another
            at = dup % len(msgs)
            msgs.insert(at + 1, msgs[rng.randint(0, at)])
            self.expected["duplicates"] += 1
        settled = self.feed(msgs)
        self.model_commit(block)
        self.check_settled(settled, block.number, after_reorg=False)

    # -- rules --------------------------------------------------------------------------
    @initialize(seed=SEEDS)
    def start(self, seed: int) -> None:
        state = seed_state(POOLS, random.Random(seed))
        self.chain = CanonicalChain(POOLS, START_BLOCK, state)
        self.resync([p for p in POOLS if p is not UNHYDRATED])

    @rule(count=st.integers(1, 3), seed=SEEDS, dup=st.none() | st.integers(0, 50))
    def committed_blocks(self, count: int, seed: int, dup: int | None) -> None:
        rng = random.Random(seed)
        for k in range(count):
            self.commit_one(rng, dup if k == 0 else None)

    @rule(count=st.integers(10, 60), seed=SEEDS)
    def many_blocks(self, count: int, seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(count):
            self.commit_one(rng)

    @rule(
        depth=DEPTHS,
        extra=st.integers(-2, 3),
        plain=st.booleans(),
        seed=SEEDS,
        producer_scope=st.booleans(),
        v2_sync_in_reverts=st.booleans(),
    )
    def reorg(
        self,
        depth: int,
        extra: int,
        plain: bool,
        seed: int,
        *,
        producer_scope: bool = True,
        v2_sync_in_reverts: bool = False,
    ) -> None:
        """An envelope. Its finals cover the producer's affected pools, or every pool
        the old and new blocks touched; its reverted blocks carry V2Sync or (as the
        producer sends them) not."""
        if not self.chain.blocks:
            return
        rng = random.Random(seed)
        old = self.chain.rewind(min(depth, len(self.chain.blocks)))
        new = [self.chain.generate(rng) for _ in range(0 if plain else max(0, len(old) + extra))]
        affected = set()
        for block in old if producer_scope else (*old, *new):
            affected |= self.model.pools_touched(block_events(block))
        if producer_scope:
            affected &= producer_affected(old)
        finals = [self.chain.final(k) for k in sorted(affected)]
        rng.shuffle(finals)
        msgs = self.builder.reorg(
            old,
            new,
            finals,
            final_tip_block=self.chain.tip,
            final_tip_timestamp=seed,
            v2_sync_in_reverts=v2_sync_in_reverts,
        )
        settled = self.feed(msgs)
        in_ring, held = len(self.model.ring), len(self.model.snapshots())
        for block in reversed(old):
            reverted = block_events(block, is_revert=True)
            if not v2_sync_in_reverts:
                reverted = [e for e in reverted if not isinstance(e.update, m.V2Sync)]
            self.model.revert(block.number, reverted)
        if UNHYDRATED.key in self.model.unknown and self.model.tip != START_BLOCK - 1:
            tally("a Sync-made-live pool is reverted to unknown")
        reach = "ring" if len(old) <= in_ring else "spill" if len(old) <= held else "beyond"
        tally(f"reorg reaches {reach}")
        tally(f"reorg depth {'1-12' if len(old) <= 12 else '13-60' if len(old) <= 60 else '61+'}")
        for block in new:
            self.model_commit(block)
        divergences = self.model.divergences
        for final in finals:
            self.model.apply_final(final)
        if self.model.divergences > divergences:
            tally("reorg finals diverge")
        if self.model.stale and not self.model.unsynced:
            tally("pools left stale after the envelope (no final for them)")
        self.phase = AssemblerPhase.AT_BOUNDARY
        self.expected["reorgs"] += 1
        self.check_settled(settled, self.chain.tip, after_reorg=True)

    @rule(
        mode=st.sampled_from(LOSS_MODES),
        pos=st.integers(0, 50),
        seed=SEEDS,
        then_reorg=st.integers(0, 3),
    )
    def loss_inside_block(self, mode: str, pos: int, seed: int, then_reorg: int) -> None:
        """A block the arena must discard whole, then the next block (which arrives
        after a missing one), then maybe a shallow reorg over the hole before any resync:
        its finals differ from what the arena holds."""
        rng = random.Random(seed)
        block = self.chain.generate(rng)
        if mode == "update_mismatch" and not block.updates:
            mode = "num_updates"
        if mode in FRAMING_FAULTS:  # the open block is discarded at the fault
            self.feed(self.builder.malformed(block, mode, at=pos, as_revert=rng.random() < 0.5))
            counted: bool | None = True
        else:
            counted = self.send_losing_a_frame(mode, self.builder.committed(block), pos)
        if counted is not None:
            self.lose(LOSS_REASON[mode], counted=counted)
        follow = self.chain.generate(rng)
        settled = self.feed(self.builder.committed(follow))
        self.model_commit(follow)  # one block after a missing one: block_gap, unsynced
        self.check_settled(settled, follow.number, after_reorg=False)
        if then_reorg:
            self.reorg(then_reorg, rng.randint(-1, 1), plain=False, seed=seed)

    @rule(seed=SEEDS)
    def update_outside_block(self, seed: int) -> None:
        rng = random.Random(seed)
        pool = rng.choice(POOLS)
        payload = m.V2Sync(reserve0=1, reserve1=2)
        event = m.PoolUpdateMessage(
            pool_id=pool.pool_id,
            protocol=PROTOCOL[pool.kind],
            update_type=m.UpdateType.SWAP,
            block_number=self.chain.tip,
            block_timestamp=0,
            tx_index=0,
            log_index=0,
            is_revert=False,
            update=payload,
        )
        assert self.feed([self.builder.raw_update(event)]) == []
        # while skipping to a boundary it is just ignored
        if self.phase is not AssemblerPhase.SKIPPING_TO_BOUNDARY:
            self.lose("update_outside_block", counted=True)

    @rule(back=st.integers(1, 64))
    def resend(self, back: int) -> None:
        if not self.sent:
            return
        msg = self.sent[-min(back, len(self.sent))]
        assert self.assembler.feed(msg) is None
        assert self.twin.feed(msg) is None
        self.expected["duplicates"] += 1

    @rule()
    def connection_lost(self) -> None:
        self.assembler.on_connection_lost()
        self.twin.on_connection_lost()
        self.lose("connection_lost", counted=self.phase is not AssemblerPhase.SKIPPING_TO_BOUNDARY)
        self.sent.clear()
        self.seq_known = False

    @rule()
    def resync_from_rpc(self) -> None:
        """At a block boundary, usually after a loss (while synced it changes nothing)."""
        self.resync()

    # -- the comparison -----------------------------------------------------------------
    @invariant()
    def state_equals_model(self) -> None:
        engine, model = self.engine, self.model
        assert engine.tip_block == model.tip
        assert engine.sync_state.value == model.sync.value
        loss = engine.sync_status.loss
        assert (None if loss is None else loss.cause.value) == model.loss
        assert self.assembler.phase is self.phase
        for pool in POOLS:
            i = self.index[pool.key]
            assert engine.status[i] == STATUS[model.status(pool.key)], pool
            assert engine.table.read(i) == record_bytes(pool.kind, model.records[pool.key])
            if pool.kind is not Kind.V2:
                ticks = {t: (v[0], v[1]) for t, v in engine.ticks.ticks(i).items()}
                assert ticks == model.ticks[pool.key]

    @invariant()
    def columnar_twin_equals_reference(self) -> None:
        assert self.twin.phase is self.assembler.phase
        assert self.twin.last_seq == self.assembler.last_seq
        assert engine_snapshot(self.twin.engine) == engine_snapshot(self.engine)

    @invariant()
    def history_equals_model(self) -> None:
        engine, model = self.engine, self.model
        oldest, tip = model.oldest_answerable(), model.tip
        assert oldest is not None and tip is not None
        assert oldest_answerable_block(engine) == oldest
        blocks = {oldest, tip, (oldest + tip) // 2, *range(tip - 3, tip)}
        blocks |= {b for b in range(oldest, tip + 1, 7)}
        for block in sorted(b for b in blocks if oldest <= b <= tip):
            for pool in POOLS:
                want = record_bytes(pool.kind, model.state_at(pool.key, block))
                assert state_at(engine, self.index[pool.key], block) == want, (pool, block)
        for outside in (oldest - 1, tip + 1):
            with pytest.raises(StateUnavailableError):
                state_at(engine, self.index[POOLS[0].key], outside)

    @invariant()
    def metrics_equal_model(self) -> None:
        reg, model = self.engine.metrics.registry, self.model

        def value(name: str, labels: dict[str, str] | None = None) -> float:
            return reg.get_sample_value(name, labels or {}) or 0.0

        discards = {
            s.labels["reason"]: s.value
            for metric in reg.collect()
            if metric.name == "arena_block_discarded"
            for s in metric.samples
            if s.name == "arena_block_discarded_total" and s.value
        }
        assert discards == {r: float(n) for r, n in model.discards.items() if n}
        assert value("arena_stream_duplicates_total") == self.expected["duplicates"]
        assert value("arena_stream_seq_gaps_total") == self.expected["seq_gaps"]
        assert value("arena_stream_lost_messages_total") == self.expected["lost_messages"]
        assert value("arena_stream_producer_restarts_total") == 0
        assert value("arena_reorg_envelopes_total") == self.expected["reorgs"]
        assert value("arena_block_applied_total") == model.applied
        assert value("arena_block_reverted_total") == model.reverted
        divergences = sum(
            value("arena_reorg_divergences_total", {"kind": k}) for k in ("v2", "v3", "v4")
        )
        assert divergences == model.divergences
        assert value("arena_pools_stale") == len(model.stale)
        assert value("arena_state_synced") == (1 if model.sync is Sync.SYNCED else 0)
        assert value("arena_state_tip_block") == model.tip
        assert value("arena_ring_blocks") == len(model.ring)

    @invariant()
    def synced_model_equals_chain(self) -> None:
        """The model itself, checked against the chain's own bookkeeping."""
        model, chain = self.model, self.chain
        assert model.tip == chain.tip
        if model.sync is not Sync.SYNCED:
            return
        records = chain.records()
        for key in model.unknown:
            assert key == UNHYDRATED.key
        for key in model.unknown | model.stale:
            del records[key]
        assert {k: r for k, r in model.records.items() if k in records} == records
        for key, ticks in chain.tick_maps().items():
            assert model.ticks[key] == ticks


class EngineWithoutSpillMachine(EngineMachine):
    spill_depth = None


# ~0.3 s per example. Hypothesis turns rules off at random per example (swarm testing),
# so it takes many examples to see every combination.
SETTINGS = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestEngineWithSpill = EngineMachine.TestCase
TestEngineWithSpill.settings = SETTINGS
TestEngineWithoutSpill = EngineWithoutSpillMachine.TestCase
TestEngineWithoutSpill.settings = settings(SETTINGS, max_examples=30)
