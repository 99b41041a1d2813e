"""The initialized ticks of one V3/V4 pool, answering TickBitmap's questions exactly.

A tick is *initialized* when its liquidity_gross is non-zero, which can happen with a zero
liquidity_net (one position ends where another of the same size starts). Such ticks still
end a swap step, and step boundaries change the rounding, so they must be kept: every
tick present in the table is initialized, whatever its net.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, Mapping, Sequence
from typing import final

from pathfinder.errors import InvalidInputError
from pathfinder.full_math import MAX_INT128
from pathfinder.tick_math import MAX_TICK, MIN_TICK

__all__ = [
    "TickTable",
]


@final
class TickTable:
    """Sorted initialized ticks plus tick -> liquidity_net, for one pool."""

    __slots__ = ("_net", "_ticks", "tick_spacing")

    def __init__(self, tick_spacing: int, liquidity_net: Mapping[int, int] | None = None) -> None:
        if tick_spacing <= 0 or tick_spacing > MAX_TICK:
            raise InvalidInputError("tick_spacing", tick_spacing)
        self.tick_spacing = tick_spacing
        self._net: dict[int, int] = {}
        for tick, net in (liquidity_net or {}).items():
            self._validate(tick, net)
            self._net[tick] = net
        self._ticks: list[int] = sorted(self._net)

    @classmethod
    def from_net(cls, liquidity_net: Mapping[int, int], tick_spacing: int) -> TickTable:
        """Every key is an initialized tick (include zero-net ticks whose gross is > 0)."""
        return cls(tick_spacing, liquidity_net)

    @classmethod
    def from_net_gross(cls, ticks: Mapping[int, Sequence[int]], tick_spacing: int) -> TickTable:
        """From tick -> (liquidity_net, liquidity_gross), e.g. an arena TickMap; ticks with
        zero gross are not initialized and are skipped."""
        return cls(tick_spacing, {t: v[0] for t, v in ticks.items() if v[1] != 0})

    def _validate(self, tick: int, net: int) -> None:
        if tick % self.tick_spacing != 0 or not MIN_TICK <= tick <= MAX_TICK:
            raise InvalidInputError("tick", tick)
        if not -MAX_INT128 <= net <= MAX_INT128:
            raise InvalidInputError("liquidity_net", net)

    def update(self, tick: int, liquidity_net: int) -> None:
        """Mark `tick` initialized with this net (insert or overwrite)."""
        self._validate(tick, liquidity_net)
        if tick not in self._net:
            insort(self._ticks, tick)
        self._net[tick] = liquidity_net

    def remove(self, tick: int) -> None:
        """Un-initialize `tick` (its liquidity_gross reached zero); absent ticks are ignored."""
        if self._net.pop(tick, None) is not None:
            del self._ticks[bisect_left(self._ticks, tick)]

    def liquidity_net(self, tick: int) -> int:
        """Net liquidity of an initialized tick, 0 for any other tick."""
        return self._net.get(tick, 0)

    def __len__(self) -> int:
        return len(self._ticks)

    def __contains__(self, tick: object) -> bool:
        return tick in self._net

    def __iter__(self) -> Iterator[int]:
        return iter(tuple(self._ticks))

    def items(self) -> list[tuple[int, int]]:
        """(tick, liquidity_net) in ascending tick order."""
        net = self._net
        return [(t, net[t]) for t in self._ticks]

    def next_initialized_tick_within_one_word(self, tick: int, lte: bool) -> tuple[int, bool]:
        """TickBitmap.nextInitializedTickWithinOneWord.

        Searches only the 256-tick-spacing word holding the start position. lte=True looks
        at or below ``tick``; lte=False strictly above. Returns the initialized tick found,
        or the word's boundary tick and False. The result may lie beyond MIN_TICK/MAX_TICK:
        the caller clamps, as the pool does.
        """
        spacing = self.tick_spacing
        compressed = tick // spacing  # floor: rounds toward negative infinity
        ticks = self._ticks
        if lte:
            word_start = (compressed >> 8) << 8
            i = bisect_right(ticks, compressed * spacing) - 1
            if i >= 0 and ticks[i] >= word_start * spacing:
                return ticks[i], True
            return word_start * spacing, False
        start = compressed + 1
        word_end = ((start >> 8) << 8) + 255
        i = bisect_left(ticks, start * spacing)
        if i < len(ticks) and ticks[i] <= word_end * spacing:
            return ticks[i], True
        return word_end * spacing, False
