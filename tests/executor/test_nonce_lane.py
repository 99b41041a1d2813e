"""Nonce lane transitions: no nonce handed out twice while in use, none skipped."""

from __future__ import annotations

from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from executor.nonce_lane import (
    LANE_DECODER,
    LaneState,
    LocalLane,
    advance,
    confirm,
    release,
    reserve,
    resync,
)

operations = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "confirm", "release", "expire", "advance"]),
        st.integers(0, 1000),
    ),
    max_size=80,
)


@given(st.integers(0, 50), operations)
@example(0, [("reserve", 0), ("reserve", 0), ("confirm", 1), ("release", 0), ("advance", 0)])
def test_every_nonce_below_next_is_confirmed_leased_or_free(
    start: int, ops: list[tuple[str, int]]
) -> None:
    state = LaneState(next=start)
    confirmed: set[int] = set(range(start))  # the node's count: used before the lane began
    now = 0
    for op, pick in ops:
        # an expired lease's holder is dead: its nonce may be handed out again
        leased = [lease.nonce for lease in state.leases if lease.expires_ms > now]
        if op == "reserve":
            state, nonce = reserve(state, "me", now, 10)
            assert nonce not in confirmed and nonce not in leased
        elif op == "confirm" and leased:
            nonce = leased[pick % len(leased)]
            state = confirm(state, nonce)
            confirmed.add(nonce)
        elif op == "release" and leased:
            state = release(state, leased[pick % len(leased)])
        elif op == "expire":
            now += 11  # every lease held so far expires: its holder died
        elif op == "advance":
            # the node's count: a nonce counts only once every nonce below it is used
            count = 0
            while count in confirmed:
                count += 1
            state = advance(state, count)
        leases = {lease.nonce for lease in state.leases}
        free = set(state.free)
        assert len(leases) == len(state.leases)
        assert not (confirmed & leases) and not (confirmed & free) and not (leases & free)
        assert confirmed | leases | free >= set(range(state.next))
        assert list(state.free) == sorted(free)


def test_a_released_nonce_is_reused_first() -> None:
    state = LaneState(next=5)
    state, a = reserve(state, "me", 0, 1000)
    state, b = reserve(state, "me", 0, 1000)
    state = release(state, a)
    state, c = reserve(state, "me", 0, 1000)
    assert (a, b, c) == (5, 6, 5)


def test_releasing_the_last_nonce_moves_next_back() -> None:
    state, nonce = reserve(LaneState(next=3), "me", 0, 1000)
    assert release(state, nonce) == LaneState(next=3)


def test_an_expired_lease_is_reclaimed_by_the_next_reservation() -> None:
    state, dead = reserve(LaneState(next=0), "a", 0, 100)
    state, _ = reserve(state, "b", 50, 100)
    state, reused = reserve(state, "b", 101, 100)
    assert dead == reused == 0


def test_resync_without_leases_takes_the_node_count_and_with_leases_only_advances() -> None:
    assert resync(LaneState(next=9, free=(4,)), 6) == LaneState(next=6)
    state, _ = reserve(LaneState(next=9, free=(4, 7)), "me", 0, 100)
    assert state.free == (7,)
    after = resync(state, 6)
    assert after.next == 9 and after.free == (7,) and after.leases == state.leases


def test_a_local_lane_resumes_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "lane.json"
    node_count = [3]
    lane = LocalLane(path, lambda: node_count[0], owner="one", lease_s=60)
    first = [lane.reserve() for _ in range(3)]
    for nonce in first:
        lane.confirm(nonce)  # accepted by the node
    node_count[0] = 6
    held = lane.reserve()
    again = LocalLane(path, lambda: node_count[0], owner="two", lease_s=60)
    assert first == [3, 4, 5] and held == 6
    # the lease of the process that stopped holds: the restart does not reuse 6 yet
    assert again.reserve() == 7
    assert LANE_DECODER.decode(path.read_bytes()).next == 8
