"""The 52-byte swap state of every pool, one NumPy structured array.

A record is `sqrt_price_x96` (32 bytes), `liquidity` (16 bytes), `tick` (int32). V2 pools
keep `reserve0`/`reserve1` (16 bytes each) in the first 32 bytes, overlapping
`sqrt_price_x96`, which a V2 pool does not have. All integers are little-endian;
`pack_*`/`unpack_*` convert to and from Python ints. Because the record is one
fixed-size item, a block's pre-images are one fancy-index copy.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final, final

import numpy as np
import numpy.typing as npt

SWAP_STATE: Final = np.dtype(
    {
        "names": ["sqrt_price_x96", "liquidity", "tick", "reserve0", "reserve1"],
        "formats": ["V32", "V16", "<i4", "V16", "V16"],
        "offsets": [0, 32, 48, 0, 16],
        "itemsize": 52,
    }
)
RECORD_SIZE: Final = SWAP_STATE.itemsize

StateArray = npt.NDArray[np.void]
IndexArray = npt.NDArray[np.int64]

_TICK_BYTES: Final = 4


_SLOT0_LAYOUT: Final = struct.Struct("<32s16si")
_RESERVES_LAYOUT: Final = struct.Struct("<16s16s20x")


def pack_records(values: Iterable[tuple[int, ...]]) -> bytes:
    """Concatenated records of [sqrt, liquidity, tick] (V3/V4) or [reserve0, reserve1] (V2)."""
    slot0, reserves = _SLOT0_LAYOUT.pack, _RESERVES_LAYOUT.pack
    return b"".join(
        [
            slot0(v[0].to_bytes(32, "little"), v[1].to_bytes(16, "little"), v[2])
            if len(v) == 3
            else reserves(v[0].to_bytes(16, "little"), v[1].to_bytes(16, "little"))
            for v in values
        ]
    )


def pack_slot0(sqrt_price_x96: int, liquidity: int, tick: int) -> bytes:
    """The 52 record bytes of a V3/V4 pool."""
    return (
        sqrt_price_x96.to_bytes(32, "little")
        + liquidity.to_bytes(16, "little")
        + tick.to_bytes(_TICK_BYTES, "little", signed=True)
    )


def pack_reserves(reserve0: int, reserve1: int) -> bytes:
    """The 52 record bytes of a V2 pool (liquidity and tick are zero)."""
    return reserve0.to_bytes(16, "little") + reserve1.to_bytes(16, "little") + bytes(20)


def unpack_slot0(record: bytes) -> tuple[int, int, int]:
    sqrt, liquidity, tick = _SLOT0_LAYOUT.unpack(record)
    return int.from_bytes(sqrt, "little"), int.from_bytes(liquidity, "little"), tick


def unpack_reserves(record: bytes) -> tuple[int, int]:
    return int.from_bytes(record[0:16], "little"), int.from_bytes(record[16:32], "little")


def records_from_bytes(blob: bytes) -> StateArray:
    """A (writable) structured array over concatenated 52-byte records."""
    return np.frombuffer(bytearray(blob), dtype=SWAP_STATE)


def limbs_to_float(raw: npt.NDArray[np.void], width: int) -> npt.NDArray[np.float64]:
    """Vectorized float64 of little-endian unsigned integers stored as `width`-byte voids."""
    words = np.ascontiguousarray(raw).view(np.uint64).reshape(-1, width // 8)
    out = np.zeros(words.shape[0], dtype=np.float64)
    for k in range(words.shape[1] - 1, -1, -1):
        out = out * 18446744073709551616.0 + words[:, k].astype(np.float64)
    return out


@final
class StateTable:
    """Growable table of swap-state records, indexed by the registry's pool index."""

    __slots__ = ("_bytes", "_records", "size")

    def __init__(self, capacity: int = 1024) -> None:
        self._records: StateArray = np.zeros(max(capacity, 1), dtype=SWAP_STATE)
        # The same memory as rows of 52 bytes: fancy-indexing plain bytes is ~3x faster
        # than fancy-indexing the structured dtype.
        self._bytes = self._records.view(np.uint8).reshape(-1, RECORD_SIZE)
        self.size = 0

    @property
    def records(self) -> StateArray:
        """The live records `[0, size)` (a view: writes go to the table)."""
        return self._records[: self.size]

    @property
    def nbytes(self) -> int:
        return int(self._records.nbytes)

    def ensure(self, size: int) -> None:
        """Grow (doubling) so that indices below `size` exist; new records are zero."""
        if size > len(self._records):
            grown = np.zeros(max(size, 2 * len(self._records)), dtype=SWAP_STATE)
            grown[: self.size] = self._records[: self.size]
            self._records = grown
            self._bytes = grown.view(np.uint8).reshape(-1, RECORD_SIZE)
        self.size = max(self.size, size)

    def read(self, index: int) -> bytes:
        return bytes(self._bytes[index].tobytes())

    def write(self, index: int, record: bytes) -> None:
        self._records[index] = np.frombuffer(record, dtype=SWAP_STATE)[0]

    def gather(self, indices: IndexArray) -> StateArray:
        """Copies of the records at `indices` (one fancy-index)."""
        rows: StateArray = self._bytes[indices].view(SWAP_STATE).reshape(-1)
        return rows

    def scatter(self, indices: IndexArray, records: StateArray) -> None:
        self._bytes[indices] = records.view(np.uint8).reshape(-1, RECORD_SIZE)

    def scatter_bytes(self, indices: IndexArray, blob: bytes) -> None:
        """Write concatenated 52-byte records to `indices` (in order)."""
        self._bytes[indices] = np.frombuffer(blob, dtype=np.uint8).reshape(-1, RECORD_SIZE)

    def slot0(self, index: int) -> tuple[int, int, int]:
        return unpack_slot0(self.read(index))

    def reserves(self, index: int) -> tuple[int, int]:
        return unpack_reserves(self.read(index))
