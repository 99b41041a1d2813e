"""The registry's active pools as sorted key columns, for looking up a block in one step.

A pool key (a 20-byte address or a 32-byte V4 pool id) becomes a 33-byte column value:
its length, then the key, zero-padded. Keys of either length can never be equal, as
the registry's dict keys are not. The index is an open-addressing hash table (linear
probing, at most a quarter full) of positions into the key columns: a block's keys are
hashed, and each probe round is one gather and one comparison of whole keys for all the
keys not yet resolved. A binary search would take ~17 dependent cache misses per key
over 50 000 pools; a probe takes one.
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


# odd multipliers, one per 8-byte word of the key (the length byte sits in the first)
_MIX: Final = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93],
    dtype=np.uint64,
)


def key_hashes(keys: KeyArray) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each 33-byte key (its first 32 bytes, as four words, mixed; a
    33rd byte is only ever padding of a 20-byte key, whose length byte differs)."""
    raw = keys.view(np.uint8).reshape(-1, KEY_WIDTH)[:, :32]
    words = np.ascontiguousarray(raw).view("<u8")
    mixed = words * _MIX
    hashes: npt.NDArray[np.uint64] = np.bitwise_xor.reduce(mixed, axis=1)
    return hashes


_EMPTY: Final = -1


@final
class PoolKeyIndex:
    """The active pools' keys with their row index and kind, behind a hash table;
    rebuilt when the registry's version moves (pools change between blocks only)."""

    __slots__ = (
        "_indices",
        "_keys",
        "_kinds",
        "_mask",
        "_probes",
        "_registry",
        "_shift",
        "_slots",
        "_version",
    )

    def __init__(self, registry: PoolRegistry) -> None:
        self._registry = registry
        self._version = -1
        self._keys: KeyArray = np.zeros(0, dtype=f"S{KEY_WIDTH}")
        self._indices: IndexArray = np.zeros(0, dtype=np.int64)
        self._kinds: KindArray = np.zeros(0, dtype=np.uint8)
        self._slots: IndexArray = np.full(1, _EMPTY, dtype=np.int64)
        self._mask = 0
        self._shift = np.uint64(64)
        self._probes = 0

    def _refresh(self) -> None:
        registry = self._registry
        if registry.version == self._version:
            return
        lookup = registry.lookup
        self._keys = np.array([key_column(k) for k in lookup], dtype=f"S{KEY_WIDTH}")
        entries = np.array(list(lookup.values()), dtype=np.int64).reshape(-1, 2)
        self._indices = entries[:, 0].copy()
        self._kinds = entries[:, 1].astype(np.uint8)
        bits = max(10, (4 * len(self._keys)).bit_length())
        self._slots, self._probes = _hash_table(key_hashes(self._keys), bits)
        self._mask = (1 << bits) - 1
        self._shift = np.uint64(64 - bits)
        self._version = registry.version

    def find(self, keys: KeyArray) -> tuple[IndexArray, KindArray]:
        """Each key's pool index and kind; -1 and 0 for a key of no active pool."""
        self._refresh()
        found = np.full(len(keys), _EMPTY, dtype=np.int64)  # position in the key columns
        hashes = (key_hashes(keys) >> self._shift).view(np.int64)
        pending = np.arange(len(keys), dtype=np.int64)
        for probe in range(self._probes):
            at = self._slots[(hashes[pending] + probe) & self._mask]
            filled = at != _EMPTY
            hit = filled.copy()
            hit[filled] = self._keys[at[filled]] == keys[pending[filled]]
            found[pending[hit]] = at[hit]
            pending = pending[filled & ~hit]  # an empty slot ends the search: absent
            if not len(pending):
                break
        hit = found != _EMPTY
        indices = np.where(hit, self._indices[found], _EMPTY)
        kinds = np.where(hit, self._kinds[found], 0).astype(np.uint8)
        return indices, kinds


def _hash_table(hashes: npt.NDArray[np.uint64], bits: int) -> tuple[IndexArray, int]:
    """Slots (positions into `hashes`, or empty) by linear probing from a hash's top
    `bits` (a product's low bits only see the factors' low bits), and the most probes
    any key needs. Keys are placed in rounds: in round r each unplaced key tries slot
    start + r, so every slot a lookup passes over is filled."""
    size = 1 << bits
    slots = np.full(size, _EMPTY, dtype=np.int64)
    start = (hashes >> np.uint64(64 - bits)).view(np.int64)
    pending = np.arange(len(hashes), dtype=np.int64)
    probes = 0
    while len(pending):
        wanted = (start[pending] + probes) & (size - 1)
        free = slots[wanted] == _EMPTY
        taken, first = np.unique(wanted[free], return_index=True)
        slots[taken] = pending[free][first]
        placed = np.zeros(len(pending), dtype=np.bool_)
        placed[np.flatnonzero(free)[first]] = True
        pending = pending[~placed]
        probes += 1
    return slots, probes
