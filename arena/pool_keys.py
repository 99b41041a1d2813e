"""The registry's active pools as sorted key columns, for looking up a block in one step.

A pool key (a 20-byte address or a 32-byte V4 pool id) becomes a 33-byte column value:
its length, then the key, zero-padded. Keys of either length can never be equal, as
the registry's dict keys are not. The index sorts the first eight key bytes as uint64 and
looks a block's keys up with one `searchsorted`, then compares the whole keys; if two
active pools share those eight bytes it searches the 33-byte values instead.
"""

from __future__ import annotations

from typing import Final, final

import numpy as np
import numpy.typing as npt

from arena.registry import PoolRegistry

KEY_WIDTH: Final = 33  # length byte + up to 32 key bytes
KeyArray = npt.NDArray[np.bytes_]  # dtype S33
IndexArray = npt.NDArray[np.int64]
KindArray = npt.NDArray[np.uint8]


def key_column(key: bytes) -> bytes:
    return bytes((len(key),)) + key.ljust(KEY_WIDTH - 1, b"\x00")


def key_prefixes(keys: KeyArray) -> npt.NDArray[np.uint64]:
    """The eight bytes after the length byte of each 33-byte key, as one uint64."""
    raw = keys.view(np.uint8).reshape(-1, KEY_WIDTH)[:, 1:9]
    prefixes: npt.NDArray[np.uint64] = np.ascontiguousarray(raw).view("<u8").reshape(-1)
    return prefixes


@final
class PoolKeyIndex:
    """Sorted keys of the active pools with their row index and kind; rebuilt when the
    registry's version moves (pools are added or removed between blocks only)."""

    __slots__ = ("_indices", "_keys", "_kinds", "_prefixes", "_registry", "_unique", "_version")

    def __init__(self, registry: PoolRegistry) -> None:
        self._registry = registry
        self._version = -1
        self._keys: KeyArray = np.zeros(0, dtype=f"S{KEY_WIDTH}")
        self._prefixes: npt.NDArray[np.uint64] = np.zeros(0, dtype=np.uint64)
        self._indices: IndexArray = np.zeros(0, dtype=np.int64)
        self._kinds: KindArray = np.zeros(0, dtype=np.uint8)
        self._unique = True

    def _refresh(self) -> None:
        registry = self._registry
        if registry.version == self._version:
            return
        lookup = registry.lookup
        keys = np.array([key_column(k) for k in lookup], dtype=f"S{KEY_WIDTH}")
        entries = np.array(list(lookup.values()), dtype=np.int64).reshape(-1, 2)
        prefixes = key_prefixes(keys)
        order = np.argsort(prefixes, kind="stable")
        self._prefixes = prefixes[order]
        self._unique = bool(np.all(self._prefixes[1:] != self._prefixes[:-1]))
        if not self._unique:
            order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._indices = entries[order, 0]
        self._kinds = entries[order, 1].astype(np.uint8)
        self._version = registry.version

    def find(self, keys: KeyArray) -> tuple[IndexArray, KindArray]:
        """Each key's pool index and kind; -1 and 0 for a key of no active pool."""
        self._refresh()
        if len(self._keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64), np.zeros(len(keys), dtype=np.uint8)
        if self._unique:
            pos = np.searchsorted(self._prefixes, key_prefixes(keys))
        else:
            pos = np.searchsorted(self._keys, keys)
        np.minimum(pos, len(self._keys) - 1, out=pos)
        hit = self._keys[pos] == keys
        indices = np.where(hit, self._indices[pos], -1)
        kinds = np.where(hit, self._kinds[pos], 0).astype(np.uint8)
        return indices, kinds
