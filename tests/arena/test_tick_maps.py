"""TickMaps against the Uniswap `Tick.update` rules (v3-core `libraries/Tick.sol`).

A mint of `L` over `[lower, upper)` adds `L` to both ticks' `liquidityGross`, adds `L` to
`liquidityNet` at the lower tick and subtracts it at the upper tick; a burn is the same
with `-L`. A tick whose gross returns to zero is cleared (the pool clears it on burn), a
tick whose net is zero but gross is not stays initialized.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arena.errors import ArenaError, TickMapError
from arena.tick_maps import U128_MAX, TickMaps

POOL = 3

Position = tuple[int, int, int]  # tick_lower, tick_upper, liquidity


def as_plain(maps: TickMaps, index: int = POOL) -> dict[int, tuple[int, int]]:
    return {t: (v[0], v[1]) for t, v in maps.ticks(index).items()}


def expected_from_positions(positions: list[Position]) -> dict[int, tuple[int, int]]:
    """The tick map the pool would hold with exactly these positions open."""
    net: dict[int, int] = {}
    gross: dict[int, int] = {}
    for lower, upper, liquidity in positions:
        net[lower] = net.get(lower, 0) + liquidity
        net[upper] = net.get(upper, 0) - liquidity
        gross[lower] = gross.get(lower, 0) + liquidity
        gross[upper] = gross.get(upper, 0) + liquidity
    return {t: (net[t], g) for t, g in gross.items() if g}


def test_mint_sets_net_sign_at_lower_and_upper() -> None:
    maps = TickMaps()
    maps.apply(POOL, -60, 120, 1_000)
    assert as_plain(maps) == {-60: (1_000, 1_000), 120: (-1_000, 1_000)}
    assert maps.ticks(POOL + 1) == {}  # other pools untouched


def test_shared_tick_accumulates_and_net_zero_tick_stays_initialized() -> None:
    maps = TickMaps()
    maps.apply(POOL, -10, 10, 500)
    maps.apply(POOL, 10, 20, 500)
    # tick 10 is the upper of one position and the lower of the other: net cancels,
    # gross does not, so the tick stays.
    assert as_plain(maps) == {-10: (500, 500), 10: (0, 1_000), 20: (-500, 500)}
    maps.apply(POOL, 10, 20, -200)
    assert as_plain(maps) == {-10: (500, 500), 10: (-200, 800), 20: (-300, 300)}


def test_burn_to_zero_gross_removes_the_tick() -> None:
    maps = TickMaps()
    maps.apply(POOL, -10, 10, 7)
    maps.apply(POOL, 0, 10, 5)
    maps.apply(POOL, -10, 10, -7)
    assert as_plain(maps) == {0: (5, 5), 10: (-5, 5)}
    maps.apply(POOL, 0, 10, -5)
    assert as_plain(maps) == {}
    assert maps.pools() == []
    assert maps.snapshot() == {}


@pytest.mark.parametrize(
    ("lower", "upper", "delta", "bad_tick"),
    [
        (-10, 10, -6, -10),  # more than the position holds at both ticks
        (0, 10, -1, 0),  # tick 0 is not initialized
        (-10, 20, -1, 20),  # lower has gross, upper does not: nothing may change
        (-10, 10, U128_MAX, -10),  # gross above u128
    ],
)
def test_impossible_update_raises_and_leaves_the_map_unchanged(
    lower: int, upper: int, delta: int, bad_tick: int
) -> None:
    maps = TickMaps()
    maps.apply(POOL, -10, 10, 5)
    before, version = as_plain(maps), maps.version[POOL]
    with pytest.raises(TickMapError) as info:
        maps.apply(POOL, lower, upper, delta)
    assert isinstance(info.value, ArenaError)
    assert info.value.pool_index == POOL
    assert info.value.tick == bad_tick
    assert as_plain(maps) == before
    assert maps.version[POOL] == version


def test_inverted_range_raises_and_zero_delta_is_a_no_op() -> None:
    maps = TickMaps()
    with pytest.raises(TickMapError):
        maps.apply(POOL, 10, 10, 1)
    with pytest.raises(TickMapError):
        maps.apply(POOL, 20, 10, 1)
    maps.apply(POOL, 20, 10, 0)
    maps.apply(POOL, -5, 5, 0)
    assert as_plain(maps) == {}
    assert POOL not in maps.version


def test_version_bumps_on_every_change() -> None:
    maps = TickMaps()
    maps.apply(POOL, 0, 10, 1)
    maps.apply(POOL, 0, 10, 1)
    assert maps.version[POOL] == 2
    maps.set_pool(POOL, {5: (3, 3), 9: (0, 0)})
    assert maps.version[POOL] == 3
    assert as_plain(maps) == {5: (3, 3)}  # a zero-gross tick is not initialized
    maps.drop_pool(POOL)
    assert maps.version[POOL] == 4
    assert as_plain(maps) == {}


def test_snapshot_is_a_deep_copy() -> None:
    maps = TickMaps()
    maps.apply(POOL, 0, 10, 4)
    snap = maps.snapshot()
    maps.apply(POOL, 0, 10, 4)
    assert snap == {POOL: {0: (4, 4), 10: (-4, 4)}}


TICKS = st.integers(min_value=-40, max_value=40).map(lambda t: t * 10)
LIQUIDITY = st.one_of(
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=2**100),
)


@st.composite
def positions(draw: st.DrawFn) -> list[Position]:
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        a, b = draw(TICKS), draw(TICKS)
        if a == b:
            b = a + 10
        out.append((min(a, b), max(a, b), draw(LIQUIDITY)))
    return out


@given(positions=positions())
@settings(max_examples=200, deadline=None)
def test_mints_match_positions_and_reverse_burns_empty_the_map(positions: list[Position]) -> None:
    maps = TickMaps()
    for lower, upper, liquidity in positions:
        maps.apply(POOL, lower, upper, liquidity)
    assert as_plain(maps) == expected_from_positions(positions)
    for lower, upper, liquidity in reversed(positions):
        maps.apply(POOL, lower, upper, -liquidity)
    assert as_plain(maps) == {}


@given(positions=positions(), seed=st.integers(min_value=0, max_value=2**32))
@settings(max_examples=200, deadline=None)
def test_burns_in_any_order_and_interleaved_keep_the_map_exact(
    positions: list[Position], seed: int
) -> None:
    """Ops in a random order where each burn comes after its mint: after every op the map
    is the one the still-open positions define; at the end it is empty."""
    rng = random.Random(seed)
    pending = list(enumerate(positions))
    open_positions: dict[int, Position] = {}
    maps = TickMaps()
    while pending or open_positions:
        if pending and (not open_positions or rng.random() < 0.5):
            key, pos = pending.pop(rng.randrange(len(pending)))
            maps.apply(POOL, pos[0], pos[1], pos[2])
            open_positions[key] = pos
        else:
            key = rng.choice(sorted(open_positions))
            lower, upper, liquidity = open_positions.pop(key)
            maps.apply(POOL, lower, upper, -liquidity)
        assert as_plain(maps) == expected_from_positions(list(open_positions.values()))
    assert as_plain(maps) == {}


@given(positions=positions(), extra=LIQUIDITY)
@settings(max_examples=100, deadline=None)
def test_over_burn_never_changes_the_map(positions: list[Position], extra: int) -> None:
    maps = TickMaps()
    for lower, upper, liquidity in positions:
        maps.apply(POOL, lower, upper, liquidity)
    before = as_plain(maps)
    for lower, upper, _ in positions:
        # more than both ticks hold together: impossible for any position over them
        too_much = before[lower][1] + before[upper][1] + extra
        with pytest.raises(TickMapError):
            maps.apply(POOL, lower, upper, -too_much)
        assert as_plain(maps) == before
