"""The inclusion state machine over random sequences of what the node reports."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.inclusion import InclusionError, InclusionState, InclusionTrack, Mined

S = InclusionState
# The allowed edges, written out here rather than read from the module.
ALLOWED = {
    (S.SENT, S.INCLUDED),
    (S.SENT, S.REVERTED),
    (S.SENT, S.DROPPED),
    (S.INCLUDED, S.CONFIRMED),
    (S.INCLUDED, S.REORGED),
    (S.REORGED, S.SENT),
    (S.REORGED, S.INCLUDED),
    (S.REORGED, S.REVERTED),
    (S.REORGED, S.DROPPED),
}
FINAL = {S.CONFIRMED, S.REVERTED, S.DROPPED}


def mined(block: int, fork: int, *, ok: bool = True, profit: int = 100) -> Mined:
    return Mined(
        block=block,
        block_hash=f"0x{block:x}{fork:02x}",
        index=0,
        succeeded=ok,
        realized_profit=profit,
        gas_used=21_000,
        gas_price=10**9,
    )


@dataclass(frozen=True)
class Step:
    head_move: int  # the head moves by this (negative: a rollback)
    seen: Mined | None  # the node's receipt for the transaction now
    rebroadcast: bool  # the tracker re-sends it (only meaningful when reorged)
    give_up: bool  # the tracker's timeout drops it (only when sent or reorged)


steps = st.builds(
    Step,
    head_move=st.integers(min_value=-2, max_value=3),
    seen=st.none()
    | st.builds(
        mined,
        block=st.integers(min_value=95, max_value=130),
        fork=st.integers(min_value=0, max_value=2),
        ok=st.booleans(),
        profit=st.integers(min_value=-10, max_value=10**6),
    ),
    rebroadcast=st.booleans(),
    give_up=st.integers(min_value=0, max_value=19).map(lambda n: n == 0),
)


@settings(max_examples=400, deadline=None)
@given(
    sequence=st.lists(steps, max_size=40),
    depth=st.integers(min_value=0, max_value=4),
    drop_after=st.integers(min_value=1, max_value=6),
)
def test_random_histories_keep_the_invariants(
    sequence: list[Step], depth: int, drop_after: int
) -> None:
    head = 100
    track = InclusionTrack(head, confirm_depth=depth, drop_after_blocks=drop_after)
    state = S.SENT
    counted: list[int] = []
    finals = 0
    for step in sequence:
        head = max(0, head + step.head_move)
        moves = track.observe(head, step.seen)
        if step.rebroadcast and track.state is S.REORGED:
            moves.append(track.rebroadcast(head))
        if step.give_up and track.state in (S.SENT, S.REORGED):
            moves.append(track.drop("timeout"))
        for move in moves:
            assert (state, move.state) in ALLOWED, (state, move.state)
            if move.counted_profit is not None:
                assert move.state is S.CONFIRMED and move.mined is not None
                assert move.counted_profit == move.mined.realized_profit
                counted.append(move.counted_profit)
            if move.state is S.CONFIRMED:
                assert move.mined is not None and head - move.mined.block >= depth
            finals += move.state in FINAL
            state = move.state
        assert track.state is state
        assert track.pending == (state not in FINAL)
    assert len(counted) <= 1  # realized profit counted at most once
    assert finals <= 1  # one terminal state, or still pending (finals == 0)
    assert (finals == 1) == (state in FINAL)


def test_reorged_then_mined_again_counts_the_profit_once() -> None:
    track = InclusionTrack(10, confirm_depth=2, drop_after_blocks=5)
    assert [m.state for m in track.observe(11, mined(11, 0, profit=7))] == [S.INCLUDED]
    assert [m.state for m in track.observe(12, None)] == [S.REORGED]
    assert [m.state for m in track.observe(12, mined(12, 1, profit=7))] == [S.INCLUDED]
    assert track.observe(13, mined(12, 1, profit=7)) == []
    (confirmed,) = track.observe(14, mined(12, 1, profit=7))
    assert confirmed.state is S.CONFIRMED and confirmed.counted_profit == 7
    assert track.observe(20, None) == []  # terminal: a later reorg is not seen


def test_a_transaction_never_mined_is_dropped_after_its_blocks() -> None:
    track = InclusionTrack(10, confirm_depth=2, drop_after_blocks=3)
    assert track.observe(12, None) == []
    (dropped,) = track.observe(13, None)
    assert dropped.state is S.DROPPED and "3 blocks" in dropped.reason


def test_an_edge_outside_the_machine_is_refused() -> None:
    track = InclusionTrack(10, confirm_depth=2, drop_after_blocks=3)
    with pytest.raises(InclusionError):
        track.rebroadcast(11)  # only a reorged transaction is re-sent
