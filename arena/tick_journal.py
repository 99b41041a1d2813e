"""The tick-map changes of one block, each kept with what it replaced.

A block's mints and burns are applied to the tick maps as they come; if the block then
fails to commit, `undo` puts every touched tick (and each pool's map version) back as it
was, newest change first, so the maps are exactly as before the block.
"""

from __future__ import annotations

from typing import final

from arena.tick_maps import TickChange, TickMaps


@final
class TickJournal:
    __slots__ = ("_apply", "_changes", "_maps")

    def __init__(self, maps: TickMaps) -> None:
        self._maps = maps
        self._apply = maps.apply
        self._changes: list[TickChange] = []

    def apply(self, index: int, tick_lower: int, tick_upper: int, delta: int) -> None:
        """`TickMaps.apply`, remembered; raises TickMapError as it does (map unchanged)."""
        self._apply(index, tick_lower, tick_upper, delta, self._changes)

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
