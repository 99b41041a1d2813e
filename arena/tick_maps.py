"""Per-pool initialized ticks of V3/V4 pools: `liquidityNet` and `liquidityGross`.

Mint and burn update both bounds exactly as the pool contract's `Tick.update` does; a
tick whose gross liquidity returns to zero is removed, so the map holds only initialized
ticks. Reverts apply the negated delta: tick maps are never snapshotted.
"""

from __future__ import annotations

from typing import Final, final

from arena.errors import TickMapError

U128_MAX: Final = (1 << 128) - 1

TickMap = dict[int, list[int]]  # tick -> [liquidity_net, liquidity_gross]
# pool index, lower tick, its entry before, upper tick, its entry before, map version before
TickChange = tuple[int, int, list[int] | None, int, list[int] | None, int | None]


@final
class TickMaps:
    """Tick maps of all V3/V4 pools, keyed by pool index."""

    __slots__ = ("_maps", "version")

    def __init__(self) -> None:
        self._maps: dict[int, TickMap] = {}
        # Bumped on every change, so that derived structures can be cached per version.
        self.version: dict[int, int] = {}

    def ticks(self, index: int) -> TickMap:
        return self._maps.get(index, {})

    def set_pool(self, index: int, ticks: dict[int, tuple[int, int]]) -> None:
        """Replace a pool's map (hydration, resync, checkpoint restore)."""
        self._maps[index] = {t: [net, gross] for t, (net, gross) in ticks.items() if gross}
        self.version[index] = self.version.get(index, 0) + 1

    def drop_pool(self, index: int) -> None:
        self._maps.pop(index, None)
        self.version[index] = self.version.get(index, 0) + 1

    def apply(
        self,
        index: int,
        tick_lower: int,
        tick_upper: int,
        delta: int,
        journal: list[TickChange] | None = None,
    ) -> None:
        """Add `delta` liquidity over [tick_lower, tick_upper) (negative: burn).

        Raises TickMapError, leaving the map unchanged, if the result is impossible
        (gross below zero or above u128), which means the map had diverged. With a
        `journal`, what the change replaces is appended to it first (see TickJournal).
        """
        if delta == 0:
            return
        if tick_lower >= tick_upper:
            raise TickMapError(index, tick_lower, f"tick_lower >= tick_upper ({tick_upper})")
        ticks = self._maps.get(index)
        if ticks is None:
            ticks = self._maps[index] = {}
        lower = ticks.get(tick_lower)
        upper = ticks.get(tick_upper)
        gross_lower = (lower[1] if lower else 0) + delta
        gross_upper = (upper[1] if upper else 0) + delta
        if not (0 <= gross_lower <= U128_MAX and 0 <= gross_upper <= U128_MAX):
            bad, gross = (
                (tick_lower, gross_lower)
                if not 0 <= gross_lower <= U128_MAX
                else (tick_upper, gross_upper)
            )
            raise TickMapError(index, bad, f"liquidityGross would become {gross}")
        if journal is not None:
            journal.append(
                (
                    index,
                    tick_lower,
                    lower and lower.copy(),
                    tick_upper,
                    upper and upper.copy(),
                    self.version.get(index),
                )
            )
        if not gross_lower:
            del ticks[tick_lower]
        elif lower:
            lower[0] += delta
            lower[1] = gross_lower
        else:
            ticks[tick_lower] = [delta, gross_lower]
        if not gross_upper:
            del ticks[tick_upper]
        elif upper:
            upper[0] -= delta
            upper[1] = gross_upper
        else:
            ticks[tick_upper] = [-delta, gross_upper]
        self.version[index] = self.version.get(index, 0) + 1

    def snapshot(self) -> dict[int, dict[int, tuple[int, int]]]:
        """A deep copy as plain tuples (for checkpoints and exports)."""
        return {i: {t: (v[0], v[1]) for t, v in m.items()} for i, m in self._maps.items() if m}

    def pools(self) -> list[int]:
        return [i for i, m in self._maps.items() if m]
