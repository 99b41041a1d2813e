"""The pool registry: which pools the arena models, and each one's row index.

Indices are never reused: a removed pool keeps its row (inactive) so that pre-images in
the ring and the spill can never land on another pool. Adds and removes are applied by
the engine between blocks only.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, final

import numpy as np
import numpy.typing as npt

from exex_bridge.messages import Protocol
from exex_bridge.whitelist import WhitelistedPool


class PoolKind(IntEnum):
    """How the arena models a pool's state (0 = not modelled)."""

    UNMODELLED = 0
    V2 = 1
    V3 = 2
    V4 = 3
    CURVE_STABLE = 4  # multi-coin: state in arena.coin_pools, not in the 52-byte record
    BALANCER_WEIGHTED = 5  # multi-coin, as CURVE_STABLE


KIND_OF_PROTOCOL: Final[dict[Protocol, PoolKind]] = {
    Protocol.UNISWAP_V2: PoolKind.V2,
    Protocol.UNISWAP_V3: PoolKind.V3,
    Protocol.UNISWAP_V4: PoolKind.V4,
    Protocol.CURVE_STABLE: PoolKind.CURVE_STABLE,
    Protocol.BALANCER_V2_WEIGHTED: PoolKind.BALANCER_WEIGHTED,
}
# kinds whose state lives in arena.coin_pools.CoinPoolStore
COIN_POOL_KINDS: Final[frozenset[PoolKind]] = frozenset(
    {PoolKind.CURVE_STABLE, PoolKind.BALANCER_WEIGHTED}
)
_UNMODELLED: Final = PoolKind.UNMODELLED


@final
class PoolRegistry:
    """Pool key (20-byte address or 32-byte V4 id) <-> row index, with per-row metadata."""

    def __init__(self) -> None:
        self.index_of: dict[bytes, int] = {}
        self.pools: list[WhitelistedPool] = []
        self._kind: npt.NDArray[np.uint8] = np.zeros(16, dtype=np.uint8)
        self._active: npt.NDArray[np.bool_] = np.zeros(16, dtype=np.bool_)
        self.version = 0  # bumped on every add/remove, for derived structures
        # The hot path's view: key -> (index, kind) of every active pool.
        self.lookup: dict[bytes, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self.pools)

    @property
    def kind(self) -> npt.NDArray[np.uint8]:
        return self._kind[: len(self.pools)]

    @property
    def active(self) -> npt.NDArray[np.bool_]:
        return self._active[: len(self.pools)]

    def add(self, pool: WhitelistedPool) -> tuple[int, bool]:
        """The pool's index, and whether it is newly (re)activated.

        A pool whose protocol the arena does not model is registered as UNMODELLED so that
        its updates are recognised and counted, but it is never active.
        """
        index = self.index_of.get(pool.key)
        kind = KIND_OF_PROTOCOL.get(pool.protocol, _UNMODELLED)
        if index is None:
            index = len(self.pools)
            self.pools.append(pool)
            self.index_of[pool.key] = index
            if index >= len(self._kind):  # grow with zeros (np.resize would repeat rows)
                self._kind = np.concatenate([self._kind, np.zeros_like(self._kind)])
                self._active = np.concatenate([self._active, np.zeros_like(self._active)])
        else:
            self.pools[index] = pool
        self.version += 1
        was_active = bool(self._active[index])
        modelled = kind is not _UNMODELLED
        self._kind[index] = kind
        self._active[index] = modelled
        if modelled:
            self.lookup[pool.key] = (index, int(kind))
        else:
            self.lookup.pop(pool.key, None)
        return index, modelled and not was_active

    def remove(self, key: bytes) -> int | None:
        """Deactivate a pool; returns its index, or None if it was not registered."""
        index = self.index_of.get(key)
        if index is not None:
            self._active[index] = False
            self.lookup.pop(key, None)
            self.version += 1
        return index

    def is_active(self, index: int) -> bool:
        return bool(self._active[index])

    def kind_of(self, index: int) -> PoolKind:
        return PoolKind(int(self._kind[index]))
