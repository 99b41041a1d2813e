"""TickTable against Uniswap v3-core's TickBitmap.spec.ts and a literal bitmap reference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathfinder.errors import InvalidInputError
from pathfinder.tick_math import MAX_TICK, MIN_TICK
from pathfinder.tick_table import TickTable
from tests.pathfinder._vectors import load_vectors

VECTORS = load_vectors("tick_bitmap.json")


def bitmap_reference(initialized: set[int], spacing: int, tick: int, lte: bool) -> tuple[int, bool]:
    """TickBitmap written the contract's way: words of 256 bits, masks, msb/lsb."""
    words: dict[int, int] = {}
    for t in initialized:
        compressed = t // spacing
        words[compressed >> 8] = words.get(compressed >> 8, 0) | (1 << (compressed & 255))
    compressed = tick // spacing
    if lte:
        word, bit = compressed >> 8, compressed & 255
        masked = words.get(word, 0) & ((1 << bit) - 1 + (1 << bit))
        if masked:
            return (compressed - (bit - (masked.bit_length() - 1))) * spacing, True
        return (compressed - bit) * spacing, False
    word, bit = (compressed + 1) >> 8, (compressed + 1) & 255
    masked = words.get(word, 0) & ~((1 << bit) - 1) & ((1 << 256) - 1)
    if masked:
        lsb = (masked & -masked).bit_length() - 1
        return (compressed + 1 + (lsb - bit)) * spacing, True
    return (compressed + 1 + (255 - bit)) * spacing, False


@pytest.mark.parametrize(
    "case",
    VECTORS["next_initialized_tick_within_one_word"],
    ids=lambda c: f"tick {c['tick']} lte={c['lte']}",
)
def test_tick_bitmap_spec_vectors(case: dict[str, Any]) -> None:
    table = TickTable.from_net({t: 1 for t in VECTORS["initialized"]}, VECTORS["tick_spacing"])
    if case["also_initialized"] is not None:
        table.update(case["also_initialized"], 1)
    got = table.next_initialized_tick_within_one_word(case["tick"], case["lte"])
    assert got == (case["next"], case["initialized"])


def test_zero_net_ticks_stay_initialized() -> None:
    # Arena tick maps hold [net, gross] lists.
    table = TickTable.from_net_gross({-60: [5, 5], 0: [0, 10], 60: [-5, 5], 120: [0, 0]}, 60)
    assert list(table) == [-60, 0, 60]
    assert table.next_initialized_tick_within_one_word(59, True) == (0, True)
    assert table.liquidity_net(0) == 0
    assert 120 not in table


def test_update_and_remove_keep_the_order() -> None:
    table = TickTable(10)
    for tick in (30, -20, 10, 0):
        table.update(tick, tick)
    table.update(10, 7)
    assert table.items() == [(-20, -20), (0, 0), (10, 7), (30, 30)]
    table.remove(0)
    table.remove(1000)  # absent: ignored
    assert table.items() == [(-20, -20), (10, 7), (30, 30)]
    assert len(table) == 3
    assert table.next_initialized_tick_within_one_word(29, True) == (10, True)
    # Tick 0 was removed, so its word (compressed 0..255) holds nothing at or below 9.
    assert table.next_initialized_tick_within_one_word(9, True) == (0, False)
    assert table.next_initialized_tick_within_one_word(-1, True) == (-20, True)


def test_invalid_ticks_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        TickTable(0)
    table = TickTable(60)
    for tick in (61, MAX_TICK // 60 * 60 + 60):
        with pytest.raises(InvalidInputError) as info:
            table.update(tick, 1)
        assert info.value.parameter == "tick"
    with pytest.raises(InvalidInputError):
        table.update(60, 1 << 127)
    with pytest.raises(InvalidInputError):
        TickTable.from_net({7: 1}, 60)


@st.composite
def tables(draw: st.DrawFn) -> tuple[int, set[int], int]:
    """(tick spacing, initialized ticks, query tick)."""
    spacing = draw(st.sampled_from([1, 10, 60, 200]))
    lo, hi = -(MAX_TICK // spacing), MAX_TICK // spacing
    # Cluster around 0 half the time so words holding several ticks are common.
    near = st.integers(min_value=max(lo, -1200), max_value=min(hi, 1200))
    compressed = draw(st.sets(near | st.integers(min_value=lo, max_value=hi), max_size=40))
    ticks = {c * spacing for c in compressed}
    anchors = sorted(ticks) or [0]
    offset = st.integers(min_value=-600 * spacing, max_value=600 * spacing)
    query = draw(
        st.builds(lambda a, o: a + o, st.sampled_from(anchors), offset)
        | st.integers(min_value=MIN_TICK, max_value=MAX_TICK)
    )
    return spacing, ticks, max(MIN_TICK, min(MAX_TICK, query))


@settings(max_examples=400, deadline=None)
@given(tables(), st.booleans(), st.integers(min_value=0, max_value=3))
def test_next_tick_matches_the_bitmap_reference(
    spec: tuple[int, set[int], int], lte: bool, removals: int
) -> None:
    spacing, ticks, tick = spec
    table = TickTable.from_net({t: 1 for t in ticks}, spacing)
    # Exercise the incremental path too: remove a few, then query.
    for t in sorted(ticks)[:removals]:
        table.remove(t)
        ticks.discard(t)
    expected = bitmap_reference(ticks, spacing, tick, lte)
    assert table.next_initialized_tick_within_one_word(tick, lte) == expected
