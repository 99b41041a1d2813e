"""The tick-map changes of one block, each kept with what it replaced.

A block's mints and burns are applied to the tick maps as they come; if the block then
fails to commit, `undo` puts every touched tick (and each pool's map version) back as it
was, newest change first, so the maps are exactly as before the block.
"""

from __future__ import annotations

from typing import final

from arena.tick_maps import TickMaps

# pool index, lower tick, its entry before, upper tick, its entry before, map version before
_Change = tuple[int, int, list[int] | None, int, list[int] | None, int | None]


@final
class TickJournal:
    __slots__ = ("_apply", "_changes", "_maps", "_ticks", "_versions")

    def __init__(self, maps: TickMaps) -> None:
        self._maps = maps
        self._ticks, self._apply, self._versions = maps.ticks, maps.apply, maps.version
        self._changes: list[_Change] = []

    def apply(self, index: int, tick_lower: int, tick_upper: int, delta: int) -> None:
        """`TickMaps.apply`, remembered; raises TickMapError as it does (map unchanged)."""
        if delta == 0:
            return
        ticks = self._ticks(index)
        lower, upper = ticks.get(tick_lower), ticks.get(tick_upper)
        self._changes.append(
            (
                index,
                tick_lower,
                lower and lower.copy(),
                tick_upper,
                upper and upper.copy(),
                self._versions.get(index),
            )
        )
        self._apply(index, tick_lower, tick_upper, delta)

    def undo(self) -> None:
        maps = self._maps
        for index, lower, was_lower, upper, was_upper, version in reversed(self._changes):
            ticks = maps.ticks(index)
            for tick, was in ((upper, was_upper), (lower, was_lower)):
                if was is None:
                    ticks.pop(tick, None)
                else:
                    ticks[tick] = was
            if version is None:
                maps.version.pop(index, None)
            else:
                maps.version[index] = version
        self._changes.clear()
