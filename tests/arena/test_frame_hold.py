"""Holding frames while the RPC answers: the pipeline ends exactly where feeding the same
stream without the hold, with the RPC's state set at the block boundary, would end."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.pipeline import Pipeline
from arena.sync_state import SyncState
from exex_bridge import messages as m
from exex_bridge.codec import encode_message
from exex_bridge.whitelist import Token, WhitelistedPool
from tests.arena.stream_builder import ChainBlock, ChainUpdate, StreamBuilder, address

V2 = address(0x22)
FIRST = 101


def _block(number: int, reserve: int) -> ChainBlock:
    payload = m.V2Sync(reserve0=reserve, reserve1=number)
    update = ChainUpdate(V2, m.Protocol.UNISWAP_V2, m.UpdateType.SWAP, payload, 0, 0)
    return ChainBlock(number, 1_700_000_000 + 12 * number, 3 * number, (update,))


def _frames(reserves: Sequence[int]) -> list[bytes]:
    b = StreamBuilder()
    out: list[bytes] = []
    for offset, reserve in enumerate(reserves):
        out += [encode_message(msg) for msg in b.committed(_block(FIRST + offset, reserve))]
    return out


class _Arena:
    """One V2 pool; at every block in `rpc_blocks` a stand-in for the node sets the pool
    to (block-1, block-1) at the boundary: at once, or (`held`) when released."""

    def __init__(self, rpc_blocks: set[int], held: bool, max_bytes: int | None = None) -> None:
        self.engine = ArenaEngine(ring_depth=8)
        token = Token(address=bytes(20), decimals=18)
        pool = WhitelistedPool(
            key=V2.value,
            address=V2.value,
            protocol=m.Protocol.UNISWAP_V2,
            token0=token,
            token1=token,
        )
        (self.pool,) = self.engine.add_pools([pool])
        self.pipeline = Pipeline(self.engine)
        if max_bytes is not None:
            self.pipeline.held.max_bytes = max_bytes
        self.settled: list[tuple[int | None, SyncState, int]] = []
        self.pending: list[int] = []  # blocks whose "RPC answer" is outstanding
        self.rpc_blocks, self.held = rpc_blocks, held
        self.pipeline.subscribe_block_start(self._before_block)
        self.pipeline.subscribe_settled(self._on_settled)

    def _before_block(self, begin: m.BeginBlock) -> None:
        if begin.block_number not in self.rpc_blocks:
            return
        if self.held:
            self.pending.append(begin.block_number)
            self.pipeline.hold_frames(f"test hold at {begin.block_number}")
        else:
            self._answer(begin.block_number)

    def _answer(self, block: int) -> None:
        self.engine.set_reserves(self.pool, block - 1, block - 1)
        self.engine.mark_synced(block - 1, keep_history=False)

    def _on_settled(self, settled: Settled) -> None:
        assert not self.pipeline.held.active, "settled while the RPC was outstanding"
        self.settled.append((settled.block, settled.sync, self.engine.table.reserves(self.pool)[0]))

    def answer_and_release(self, budget: int | None) -> None:
        if self.pending:
            self._answer(self.pending.pop(0))
        while not self.pipeline.release_frames(budget):
            pass


@settings(max_examples=60, deadline=None)
@given(
    reserves=st.lists(st.integers(1, 10**30), min_size=1, max_size=12),
    rpc_offsets=st.sets(st.integers(0, 11), max_size=4),
    answer_after=st.lists(st.integers(0, 40), min_size=4, max_size=4),
    budget=st.none() | st.integers(1, 5),
)
def test_a_held_stream_ends_where_the_unheld_one_does(
    reserves: list[int], rpc_offsets: set[int], answer_after: list[int], budget: int | None
) -> None:
    rpc_blocks = {FIRST + o for o in rpc_offsets if o < len(reserves)}
    frames = _frames(reserves)
    direct = _Arena(rpc_blocks, held=False)
    for frame in frames:
        direct.pipeline.feed_frame(frame)
    held = _Arena(rpc_blocks, held=True)
    answers = iter(answer_after)
    countdown = next(answers)
    for frame in frames:
        held.pipeline.feed_frame(frame)  # the reader never waits
        if held.pending:
            countdown -= 1
            if countdown < 0:
                held.answer_and_release(budget)
                countdown = next(answers, 0)
    while held.pending:
        held.answer_and_release(budget)
    assert not held.pipeline.held.holding
    assert held.settled == direct.settled
    assert held.engine.tip_block == direct.engine.tip_block
    assert held.engine.table.reserves(held.pool) == direct.engine.table.reserves(direct.pool)


def test_stream_events_wait_behind_the_held_frames() -> None:
    frames = _frames([5, 6])
    arena = _Arena({FIRST}, held=True)
    per_block = len(frames) // 2
    for frame in frames[: per_block + 1]:  # block 101 and the BeginBlock of 102
        arena.pipeline.feed_frame(frame)
    arena.pipeline.on_connection_lost()  # read after those frames: must apply after them
    assert arena.settled == []
    arena.answer_and_release(None)
    assert arena.settled == [(FIRST, SyncState.SYNCED, 5)]
    assert arena.engine.sync_state is SyncState.UNSYNCED  # 102 was lost with the connection
    assert not arena.pipeline.at_boundary or arena.pipeline.assembler.open_block is None


def _sample(registry: CollectorRegistry, name: str) -> float:
    value = registry.get_sample_value(name)
    return 0.0 if value is None else value


def test_a_hold_over_its_bound_drops_frames_counts_them_and_the_gap_unsyncs() -> None:
    frames = _frames([5, 6, 7, 8])
    per_block = len(frames) // 4
    arena = _Arena({FIRST}, held=True, max_bytes=sum(len(f) for f in frames[1 : per_block + 1]))
    for frame in frames[: 3 * per_block]:
        arena.pipeline.feed_frame(frame)
    registry = arena.engine.metrics.registry
    dropped = _sample(registry, "arena_stream_held_frames_dropped_total")
    assert dropped == 3 * per_block - 1 - per_block
    assert _sample(registry, "arena_stream_held_frames") == per_block
    arena.answer_and_release(None)
    assert arena.settled == [(FIRST, SyncState.SYNCED, 5)]
    for frame in frames[3 * per_block :]:  # block 104 follows the dropped 102 and 103
        arena.pipeline.feed_frame(frame)
    assert arena.engine.sync_state is SyncState.UNSYNCED
    assert arena.settled[-1][:2] == (FIRST + 3, SyncState.UNSYNCED)  # never trusted again
