"""Cycle-graph edges for the coin pairs of multi-coin pools beyond their whitelisted pair.

The cycle graph, the screen's rows and the gas table are indexed by edge id. An ordinary
pool, and a multi-coin pool's whitelisted pair (token0, token1), is one edge whose id is
the pool's registry index. Every other pair of a multi-coin pool's coins (a 3-coin Curve
pool has three pairs, an 8-coin one twenty-eight) gets an edge id from `base` up, above
every registry index; each edge is traded both ways, as every edge is.

When the registry grows to `base`, the extra edges move above the new `base`
(`relocate`: the graph drops their cycles and enumerates them again), so ids never
collide; `base` doubles each time, so this is rare.
"""

from __future__ import annotations

from itertools import combinations
from typing import Final, NamedTuple, final

HEADROOM: Final = 1024  # ids kept free above the registry when `base` is set


class PairEdge(NamedTuple):
    edge: int
    pool: int  # registry index of the pool it trades in
    token0: bytes  # "zero for one" sells token0 for token1 along this edge
    token1: bytes


@final
class CoinPairEdges:
    def __init__(self) -> None:
        self.base = HEADROOM
        self._next = self.base
        self._edges: dict[int, PairEdge] = {}
        self._of_pool: dict[int, list[PairEdge]] = {}

    def __len__(self) -> int:
        return len(self._edges)

    def __contains__(self, edge: int) -> bool:
        return edge in self._edges

    @property
    def limit(self) -> int:
        """One above the largest edge id handed out (at least `base`)."""
        return self._next

    def get(self, edge: int) -> PairEdge | None:
        return self._edges.get(edge)

    def pool_of(self, edge: int) -> int:
        """The registry index an edge trades in (itself for ordinary edges)."""
        found = self._edges.get(edge)
        return edge if found is None else found.pool

    def of_pool(self, pool: int) -> list[PairEdge]:
        return self._of_pool.get(pool, [])

    def all_edges(self) -> list[PairEdge]:
        return list(self._edges.values())

    def has_pool(self, pool: int) -> bool:
        return pool in self._of_pool

    def add_pool(
        self, pool: int, coins: tuple[bytes, ...], whitelisted: tuple[bytes, bytes]
    ) -> list[PairEdge]:
        """Edges for every pair of `coins` but the whitelisted one (in coin order);
        recorded even when there are none, so that a pool is added once."""
        pair = frozenset(whitelisted)
        edges = []
        for a, b in combinations(coins, 2):
            if frozenset((a, b)) == pair or a == b:
                continue
            edge = PairEdge(self._next, pool, a, b)
            self._next += 1
            self._edges[edge.edge] = edge
            edges.append(edge)
        self._of_pool[pool] = edges
        return edges

    def remove_pool(self, pool: int) -> list[PairEdge]:
        edges = self._of_pool.pop(pool, [])
        for edge in edges:
            del self._edges[edge.edge]
        return edges

    def needs_relocation(self, registry_size: int) -> bool:
        return registry_size >= self.base

    def relocate(self, registry_size: int) -> list[tuple[PairEdge, PairEdge]]:
        """Give every edge a new id above a new `base`; returns (old, new) pairs."""
        self.base = 2 * registry_size + HEADROOM
        self._next = self.base
        moved = []
        for pool, edges in list(self._of_pool.items()):
            renewed = []
            for old in edges:
                new = PairEdge(self._next, pool, old.token0, old.token1)
                self._next += 1
                del self._edges[old.edge]
                self._edges[new.edge] = new
                renewed.append(new)
                moved.append((old, new))
            self._of_pool[pool] = renewed
        return moved
