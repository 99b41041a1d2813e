"""Every 2- and 3-hop arbitrage cycle through the base tokens, as NumPy arrays.

A cycle starts and ends at a base token (default WETH). Both directions of a cycle are
separate rows. Row `c` uses pools `pools[c, :hops[c]]`, each traded `zero_for_one[c, h]`
(token0 in, token1 out). Adding a pool enumerates only the cycles that contain it; a
removed pool's cycles are marked dead. The incidence pool → cycles is a CSR index plus
a small pending part for cycles added since the last compaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final, final

import numpy as np
import numpy.typing as npt

MAX_HOPS: Final = 3
NO_POOL: Final = -1

Hop = tuple[int, bool]  # (pool index, zero_for_one)


@final
class CycleGraph:
    def __init__(self, base_tokens: Sequence[bytes], *, max_hops: int = MAX_HOPS) -> None:
        if not base_tokens:
            raise ValueError("at least one base token is needed")
        if max_hops not in (2, 3):
            raise ValueError(f"max_hops must be 2 or 3, got {max_hops}")
        self.max_hops = max_hops
        self.base_tokens = tuple(base_tokens)
        self._bases = set(self.base_tokens)
        self._base_position = {t: i for i, t in enumerate(self.base_tokens)}
        self.pool_tokens: dict[int, tuple[bytes, bytes]] = {}
        self._pair_pools: dict[frozenset[bytes], list[int]] = defaultdict(list)
        self._neighbors: dict[bytes, set[bytes]] = defaultdict(set)
        capacity = 1024
        self.pools: npt.NDArray[np.int32] = np.full((capacity, MAX_HOPS), NO_POOL, np.int32)
        self.zero_for_one: npt.NDArray[np.bool_] = np.zeros((capacity, MAX_HOPS), np.bool_)
        self.hops: npt.NDArray[np.int8] = np.zeros(capacity, np.int8)
        self.start_base: npt.NDArray[np.int16] = np.zeros(capacity, np.int16)
        self.alive: npt.NDArray[np.bool_] = np.zeros(capacity, np.bool_)
        self.count = 0
        self._indptr: npt.NDArray[np.int64] = np.zeros(1, np.int64)
        self._ids: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._pending: dict[int, list[int]] = defaultdict(list)
        self._pending_total = 0

    # -- building -----------------------------------------------------------------------
    def add_pool(self, index: int, token0: bytes, token1: bytes) -> int:
        """Register a pool and enumerate the cycles it closes; returns how many."""
        if index in self.pool_tokens:
            return 0
        if token0 == token1:
            raise ValueError(f"pool #{index} trades a token against itself")
        before = self.count
        self.pool_tokens[index] = (token0, token1)
        for cycle in self._cycles_with(index, token0, token1):
            self._append(cycle)
        self._pair_pools[frozenset((token0, token1))].append(index)
        self._neighbors[token0].add(token1)
        self._neighbors[token1].add(token0)
        return self.count - before

    def add_pools(self, pools: Iterable[tuple[int, bytes, bytes]]) -> int:
        added = sum(self.add_pool(i, t0, t1) for i, t0, t1 in pools)
        if self._pending_total > len(self._ids) // 4 + 4096:
            self.compact()
        return added

    def remove_pool(self, index: int) -> int:
        """Mark every cycle through the pool dead; returns how many."""
        tokens = self.pool_tokens.pop(index, None)
        if tokens is None:
            return 0
        pair = frozenset(tokens)
        self._pair_pools[pair].remove(index)
        if not self._pair_pools[pair]:
            del self._pair_pools[pair]
            self._neighbors[tokens[0]].discard(tokens[1])
            self._neighbors[tokens[1]].discard(tokens[0])
        ids = self.cycles_of([index])
        self.alive[ids] = False
        return len(ids)

    # -- queries ------------------------------------------------------------------------
    def cycles_of(self, pool_indices: Iterable[int]) -> npt.NDArray[np.int64]:
        """Sorted ids of the live cycles containing any of the pools."""
        pools = np.fromiter(pool_indices, dtype=np.int64)
        indptr = self._indptr
        indexed = pools[(pools >= 0) & (pools < len(indptr) - 1)]
        starts = indptr[indexed]
        lengths = indptr[indexed + 1] - starts
        # The positions of every pool's CSR slice, gathered at once.
        positions = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        positions += np.arange(len(positions))
        found = self._ids[positions]
        if self._pending_total:
            pending = [self._pending.get(p) for p in pools.tolist()]
            found = np.concatenate([found, *(np.asarray(c, np.int64) for c in pending if c)])
        return self._live_unique(found)

    def _live_unique(self, found: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if len(found) > self.count >> 9:
            # Past a few hundred ids a mask over all cycles is several times faster than
            # np.unique, which sorts or hashes them.
            mark = np.zeros(self.count, np.bool_)
            mark[found] = True
            mark &= self.alive[: self.count]
            live: npt.NDArray[np.int64] = np.flatnonzero(mark)
            return live
        found = np.unique(found)
        return found[self.alive[found]]

    def live_count(self) -> int:
        return int(np.count_nonzero(self.alive[: self.count]))

    def start_token(self, cycle: int) -> bytes:
        return self.base_tokens[int(self.start_base[cycle])]

    def tokens(self, cycle: int) -> list[bytes]:
        """The token path, start token first and last."""
        out = [self.start_token(cycle)]
        for pool, zero_for_one in self.path(cycle):
            t0, t1 = self.pool_tokens[pool]
            out.append(t1 if zero_for_one else t0)
        return out

    def path(self, cycle: int) -> list[Hop]:
        return [
            (int(self.pools[cycle, h]), bool(self.zero_for_one[cycle, h]))
            for h in range(int(self.hops[cycle]))
        ]

    # -- internals ----------------------------------------------------------------------
    def _cycles_with(self, new: int, a: bytes, b: bytes) -> list[list[tuple[int, bytes]]]:
        """Cycles through `new` as lists of (pool, token_in), both directions."""
        out: list[list[tuple[int, bytes]]] = []
        pair = self._pair_pools
        for base, other in ((a, b), (b, a)):
            if base not in self._bases:
                continue
            for q in pair.get(frozenset((base, other)), ()):
                out.append([(new, base), (q, other)])
                out.append([(q, base), (new, other)])
            if self.max_hops < 3:
                continue
            # new is the first or last hop: base -new- other -q- y -r- base
            for y in self._neighbors.get(other, ()):
                if y in (base, other):
                    continue
                for q in pair.get(frozenset((other, y)), ()):
                    for r in pair.get(frozenset((y, base)), ()):
                        out.append([(new, base), (q, other), (r, y)])
                        out.append([(r, base), (q, y), (new, other)])
        if self.max_hops == 3:
            # new is the middle hop: base -p- a -new- b -r- base, for each base
            for base in self.base_tokens:
                if base in (a, b):
                    continue
                for p in pair.get(frozenset((base, a)), ()):
                    for r in pair.get(frozenset((b, base)), ()):
                        out.append([(p, base), (new, a), (r, b)])
                        out.append([(r, base), (new, b), (p, a)])
        return out

    def _append(self, cycle: list[tuple[int, bytes]]) -> None:
        c = self.count
        if c == len(self.hops):
            self._grow()
        for h, (pool, token_in) in enumerate(cycle):
            self.pools[c, h] = pool
            self.zero_for_one[c, h] = self.pool_tokens[pool][0] == token_in
            self._pending[pool].append(c)
        self.hops[c] = len(cycle)
        self.alive[c] = True
        self.start_base[c] = self._base_position[cycle[0][1]]
        self.count += 1
        self._pending_total += len(cycle)

    def _grow(self) -> None:
        n = 2 * len(self.hops)
        self.pools = np.concatenate([self.pools, np.full_like(self.pools, NO_POOL)])[:n]
        self.zero_for_one = np.concatenate([self.zero_for_one, np.zeros_like(self.zero_for_one)])
        self.hops = np.concatenate([self.hops, np.zeros_like(self.hops)])
        self.alive = np.concatenate([self.alive, np.zeros_like(self.alive)])
        self.start_base = np.concatenate([self.start_base, np.zeros_like(self.start_base)])

    def compact(self) -> None:
        """Fold pending cycles into the CSR index (vectorized)."""
        if not self._pending_total:
            return
        n = self.count
        pools = self.pools[:n]
        rows = np.repeat(np.arange(n, dtype=np.int64), MAX_HOPS)
        flat = pools.reshape(-1).astype(np.int64)
        keep = flat != NO_POOL
        flat, rows = flat[keep], rows[keep]
        order = np.argsort(flat, kind="stable")
        size = int(flat.max()) + 1 if len(flat) else 0
        self._indptr = np.zeros(size + 1, np.int64)
        np.cumsum(np.bincount(flat, minlength=size), out=self._indptr[1:])
        self._ids = rows[order]
        self._pending.clear()
        self._pending_total = 0
