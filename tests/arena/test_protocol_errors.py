"""Every protocol-error path of the block assembler, one test each.

Each test starts from an arena seeded at block 100 that has applied block 101 through
the assembler, breaks the stream in one way, and checks the exact discard counter, the
sync flag, and that nothing of the broken block became visible.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec
import pytest

from arena.block_assembler import AssemblerPhase, BlockAssembler, Settled
from arena.engine import ArenaEngine, PoolStatus
from arena.sync_state import LossCause, SyncState
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.tick_math import get_sqrt_ratio_at_tick
from tests.arena.stream_builder import (
    ChainBlock,
    ChainUpdate,
    StreamBuilder,
    address,
    event_of,
)

V2 = address(0x22)
V3 = address(0x33)
SEED_BLOCK = 100
REASONS = (
    "seq_gap",
    "producer_restart",
    "update_outside_block",
    "begin_inside_block",
    "end_without_begin",
    "end_block_mismatch",
    "num_updates_mismatch",
    "update_block_mismatch",
    "revert_not_tip",
    "block_not_after_tip",
    "decode_error",
    "connection_lost",
    "reorg_start_inside_block",
    "reorg_start_inside_reorg",
    "reorg_tip_mismatch",
    "epilogue_outside_reorg",
    "epilogue_inside_block",
    "reorg_complete_inside_block",
    "block_gap",
)


def sync(r0: int, r1: int, log: int) -> ChainUpdate:
    return ChainUpdate(
        V2, m.Protocol.UNISWAP_V2, m.UpdateType.SWAP, m.V2Sync(reserve0=r0, reserve1=r1), 0, log
    )


def mint(lower: int, upper: int, delta: int, log: int) -> ChainUpdate:
    payload = m.V3Liquidity(tick_lower=lower, tick_upper=upper, liquidity_delta=delta)
    kind = m.UpdateType.MINT if delta > 0 else m.UpdateType.BURN
    return ChainUpdate(V3, m.Protocol.UNISWAP_V3, kind, payload, 1, log)


def swap(tick: int, liquidity: int, log: int) -> ChainUpdate:
    payload = m.V3Swap(sqrt_price_x96=get_sqrt_ratio_at_tick(tick), liquidity=liquidity, tick=tick)
    return ChainUpdate(V3, m.Protocol.UNISWAP_V3, m.UpdateType.SWAP, payload, 2, log)


def block(number: int, *updates: ChainUpdate) -> ChainBlock:
    return ChainBlock(number, 1_700_000_000 + 12 * number, 7 * number, updates)


# Block 102, the one each test breaks: an in-range mint (not idempotent: applied twice it
# shows), a V2 sync and a swap.
B102 = block(102, mint(-60, 60, 5_000, 0), sync(11, 12, 1), swap(10, 6_000, 2))


@dataclass
class State:
    records: dict[bytes, bytes]
    ticks: dict[int, dict[int, tuple[int, int]]]
    tip: int | None
    status: list[int]


class Arena:
    def __init__(self) -> None:
        self.engine = ArenaEngine(ring_depth=4)
        self.assembler = BlockAssembler(self.engine)
        self.b = StreamBuilder()
        token = Token(address=bytes(20), decimals=18)
        pools = [
            WhitelistedPool(key=k.value, address=k.value, protocol=p, token0=token, token1=token)
            for k, p in ((V2, m.Protocol.UNISWAP_V2), (V3, m.Protocol.UNISWAP_V3))
        ]
        self.v2, self.v3 = self.engine.add_pools(pools)
        self.engine.set_reserves(self.v2, 1_000, 2_000)
        ticks = {-120: (1_000, 1_000), 120: (-1_000, 1_000)}
        self.engine.set_slot0(self.v3, 2**96, 1_000, 0, ticks=ticks)
        self.engine.mark_synced(SEED_BLOCK, keep_history=False)

    def feed(self, msgs: Sequence[m.SequencedMessage]) -> list[Settled]:
        return [s for s in (self.assembler.feed(x) for x in msgs) if s is not None]

    def state(self) -> State:
        e = self.engine
        return State(
            records={k: e.table.read(i) for k, i in ((V2.value, self.v2), (V3.value, self.v3))},
            ticks=e.ticks.snapshot(),
            tip=e.tip_block,
            status=[int(e.status[self.v2]), int(e.status[self.v3])],
        )

    def discards(self) -> dict[str, float]:
        reg = self.engine.metrics.registry
        out = {}
        for reason in REASONS:
            value = reg.get_sample_value("arena_block_discarded_total", {"reason": reason})
            if value:
                out[reason] = value
        return out

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.engine.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def arena() -> Iterator[Arena]:
    a = Arena()
    settled = a.feed(a.b.committed(block(101, sync(500, 600, 0), swap(0, 1_000, 1))))
    assert [s.block for s in settled] == [101]
    assert a.engine.synced and a.engine.tip_block == 101
    assert a.discards() == {}
    yield a


def expect_discarded(arena: Arena, before: State, reason: str) -> None:
    """The one counter moved, the arena is unsynced for that cause, and no part of the
    block shows."""
    assert arena.discards() == {reason: 1.0}
    status = arena.engine.sync_status
    assert status.state is SyncState.UNSYNCED
    assert status.loss is not None and status.loss.cause is LossCause(reason)
    assert status.loss.tip_block == 101
    assert arena.metric("arena_state_synced") == 0
    assert arena.state() == before


def test_block_102_alone_applies(arena: Arena) -> None:
    """The control: unbroken, block 102 changes every part of the state the tests watch."""
    before = arena.state()
    assert [s.block for s in arena.feed(arena.b.committed(B102))] == [102]
    after = arena.state()
    assert after.tip == 102 and after.records != before.records and after.ticks != before.ticks
    assert after.ticks[arena.v3][-60] == (5_000, 5_000)
    assert arena.engine.table.slot0(arena.v3) == (get_sqrt_ratio_at_tick(10), 6_000, 10)
    assert arena.discards() == {} and arena.engine.synced


def test_seq_gap(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [b.begin(B102), b.update(B102, B102.updates[0])]
    b.skip(1)  # the producer dropped update 1 for this client
    msgs += [b.update(B102, B102.updates[2]), b.end(102, 3)]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "seq_gap")
    assert arena.metric("arena_stream_seq_gaps_total") == 1
    assert arena.metric("arena_stream_lost_messages_total") == 1


def test_next_block_after_a_loss_applies_without_counting_the_loss_twice(arena: Arena) -> None:
    b = arena.b
    msgs = b.committed(B102)
    del msgs[1]
    arena.feed(msgs)
    settled = arena.feed(b.committed(block(103, sync(1, 2, 0))))
    assert [(s.block, s.sync) for s in settled] == [(103, SyncState.UNSYNCED)]
    assert arena.discards() == {"seq_gap": 1.0}  # one loss, one count: the gap follows from it
    loss = arena.engine.sync_status.loss
    assert loss is not None and loss.cause is LossCause.SEQ_GAP  # the first loss is kept
    assert arena.engine.tip_block == 103
    assert arena.engine.table.reserves(arena.v2) == (1, 2)


def test_producer_restart(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    arena.feed([b.begin(B102), b.update(B102, B102.updates[0])])
    b.restart(1)  # a new producer process numbers from 1 again
    assert arena.feed([b.begin(block(103))]) == []
    expect_discarded(arena, before, "producer_restart")
    assert arena.metric("arena_stream_producer_restarts_total") == 1


def test_duplicate_is_dropped_counted_and_keeps_sync(arena: Arena) -> None:
    b = arena.b
    begin = b.begin(B102)
    first_update = b.update(B102, B102.updates[0])  # the mint: applied twice it would show
    msgs: list[m.SequencedMessage] = [begin, first_update, first_update]
    msgs += [b.update(B102, u) for u in B102.updates[1:]]
    msgs += [b.end(102, 3), msgs[0]]  # and an old BeginBlock after the block
    settled = arena.feed(msgs)
    assert [(s.block, s.sync) for s in settled] == [(102, SyncState.SYNCED)]
    assert arena.metric("arena_stream_duplicates_total") == 2
    assert arena.discards() == {}
    assert arena.engine.synced
    assert arena.engine.ticks.ticks(arena.v3)[-60] == [5_000, 5_000]
    assert arena.engine.table.slot0(arena.v3) == (get_sqrt_ratio_at_tick(10), 6_000, 10)


def test_update_outside_a_block(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    assert arena.feed([b.update(B102, B102.updates[0])]) == []
    expect_discarded(arena, before, "update_outside_block")


def test_begin_inside_a_block(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.begin(B102),
        b.update(B102, B102.updates[0]),
        b.begin(block(103)),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "begin_inside_block")


def test_end_without_begin(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    assert arena.feed([b.end(102, 0)]) == []
    expect_discarded(arena, before, "end_without_begin")


def test_end_with_the_wrong_block_number(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.begin(B102),
        *(b.update(B102, u) for u in B102.updates),
        b.end(103, 3),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "end_block_mismatch")


@pytest.mark.parametrize("num_updates", [0, 2, 4])
def test_wrong_num_updates(arena: Arena, num_updates: int) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.begin(B102),
        *(b.update(B102, u) for u in B102.updates),
        b.end(102, num_updates),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "num_updates_mismatch")


@pytest.mark.parametrize(
    "change", [{"block_number": 103}, {"block_number": 101}, {"is_revert": True}]
)
def test_update_not_of_its_block(arena: Arena, change: dict[str, object]) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [b.begin(B102), b.update(B102, B102.updates[0])]
    good = event_of(B102, B102.updates[1], is_revert=False)
    msgs.append(b.raw_update(msgspec.structs.replace(good, **change)))
    msgs += [b.update(B102, B102.updates[2]), b.end(102, 3)]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "update_block_mismatch")


def test_revert_of_a_block_that_is_not_the_tip(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.reorg_start([block(100)], []),
        *b.reverted(block(100, sync(1, 1, 0))),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "revert_not_tip")


@pytest.mark.parametrize("number", [100, 101])
def test_committed_block_not_after_the_tip(arena: Arena, number: int) -> None:
    before, b = arena.state(), arena.b
    assert arena.feed(b.committed(block(number, sync(1, 1, 0)))) == []
    expect_discarded(arena, before, "block_not_after_tip")


@pytest.mark.parametrize("with_seq", [True, False])
def test_decode_error_inside_a_block(arena: Arena, with_seq: bool) -> None:
    before, b = arena.state(), arena.b
    arena.feed([b.begin(B102), b.update(B102, B102.updates[0])])
    arena.assembler.on_decode_error(b.next_seq if with_seq else None)
    b.skip(1)  # the undecodable frame
    assert arena.feed([b.update(B102, B102.updates[2]), b.end(102, 3)]) == []
    expect_discarded(arena, before, "decode_error")
    # without its stream_seq the lost frame shows up as a gap too, but nothing is open
    assert arena.metric("arena_stream_seq_gaps_total") == (0 if with_seq else 1)


def test_connection_lost_inside_a_block(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    arena.feed([b.begin(B102), b.update(B102, B102.updates[0])])
    arena.assembler.on_connection_lost()
    # a new connection sees the stream from "now": the rest of block 102, then 103
    assert arena.feed([b.update(B102, B102.updates[2]), b.end(102, 3)]) == []
    expect_discarded(arena, before, "connection_lost")
    assert arena.metric("arena_stream_seq_gaps_total") == 0


def test_reorg_start_inside_a_block(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.begin(B102),
        b.update(B102, B102.updates[0]),
        b.reorg_start([block(101)], []),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "reorg_start_inside_block")
    assert arena.assembler.phase is AssemblerPhase.IN_REORG


def test_reorg_start_inside_an_open_envelope(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.reorg_start([block(101)], []),
        b.reorg_start([block(101)], []),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "reorg_start_inside_reorg")


def test_epilogue_inside_a_block(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    final = m.V2ReservesFinal(pool_id=V2, reserve0=9, reserve1=9)
    msgs: list[m.SequencedMessage] = [
        b.begin(B102),
        b.update(B102, B102.updates[0]),
        b.epilogue(102, 0, final),
    ]
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "epilogue_inside_block")


def test_reorg_complete_inside_a_block(arena: Arena) -> None:
    before, b = arena.state(), arena.b
    msgs: list[m.SequencedMessage] = [
        b.reorg_start([], []),
        b.begin(B102),
        b.update(B102, B102.updates[0]),
    ]
    msgs.append(b.reorg_complete(101))
    assert arena.feed(msgs) == []
    expect_discarded(arena, before, "reorg_complete_inside_block")


def test_epilogue_outside_an_envelope(arena: Arena) -> None:
    """A final belongs to an envelope and its tip; alone it is a framing violation, and
    writing it would change state no block explains."""
    before, b = arena.state(), arena.b
    final = m.V2ReservesFinal(pool_id=V2, reserve0=9, reserve1=9)
    assert arena.feed([b.epilogue(101, 0, final)]) == []
    expect_discarded(arena, before, "epilogue_outside_reorg")


def test_reorg_complete_with_a_mismatched_final_tip(arena: Arena) -> None:
    b = arena.b
    b101 = block(101, sync(500, 600, 0), swap(0, 1_000, 1))
    new101 = block(101, sync(7, 8, 0))
    finals: list[m.ReorgEpilogueUpdate] = [m.V2ReservesFinal(pool_id=V2, reserve0=7, reserve1=8)]
    finals.append(
        m.Slot0Final(
            pool_id=V3,
            protocol=m.Protocol.UNISWAP_V3,
            state=m.Slot0State(sqrt_price_x96=2**96, liquidity=1_000, tick=0),
        )
    )
    msgs = b.reorg([b101], [new101], finals, final_tip_block=105)
    settled = arena.feed(msgs)
    assert [(s.block, s.after_reorg, s.sync) for s in settled] == [(105, True, SyncState.UNSYNCED)]
    assert arena.discards() == {"reorg_tip_mismatch": 1.0}
    assert not arena.engine.synced
    # each block of the envelope is whole: the state is the envelope's, nothing half-done
    assert arena.engine.tip_block == 101
    assert arena.engine.table.reserves(arena.v2) == (7, 8)
    assert arena.engine.table.slot0(arena.v3) == (2**96, 1_000, 0)
    for kind in ("v2", "v3", "v4"):
        assert arena.metric("arena_reorg_divergences_total", {"kind": kind}) == 0
    assert arena.state().status == [PoolStatus.LIVE, PoolStatus.LIVE]
