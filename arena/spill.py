"""RocksDB spill: the pre-images of blocks that left the snapshot ring.

One key per block, `b"s"` + the block number as a big-endian u64, so RocksDB's key order
is block order and the spill behaves as a stack below the ring: the ring evicts its
oldest block here (`put`), a revert deeper than the ring takes the newest block back
(`take_newest`). Only the last `depth` blocks are kept.

Writes skip the write-ahead log and are never synced. Durability across a crash is not
needed: a restarted arena resyncs from the node's RPC, and the spill only has to cover
reorgs of the process that wrote it. A clean `close()` flushes, so a clean restart keeps
the spill.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, final, overload

import numpy as np
from rocksdict import DBCompressionType, Options, Rdict, WriteBatch, WriteOptions

from arena.errors import SpillError
from arena.snapshot_ring import BlockPreImages
from arena.state_table import RECORD_SIZE, SWAP_STATE

log = logging.getLogger(__name__)

DEFAULT_SPILL_DEPTH: Final = 1024
FORMAT_VERSION: Final = 1

_PREFIX: Final = b"s"
_PREFIX_END: Final = b"t"  # first key after every b"s..." key
_KEY: Final = struct.Struct(">Q")
_BLOCK_MAX: Final = (1 << 64) - 1
# version u8, 3 pad bytes, n u32, block u64; then n int64 LE indices, then n records
_HEADER: Final = struct.Struct("<B3xIQ")
_INDEX: Final = np.dtype("<i8")


def encode_pre_images(pre: BlockPreImages) -> bytes:
    """The spill's binary form of one block's pre-images (also used by checkpoints)."""
    n = len(pre.indices)
    if len(pre.records) != n:
        raise ValueError(f"block {pre.block}: {n} indices but {len(pre.records)} records")
    if pre.records.dtype.itemsize != RECORD_SIZE:
        raise ValueError(f"block {pre.block}: records are not {RECORD_SIZE}-byte SWAP_STATE")
    return b"".join(
        (
            _HEADER.pack(FORMAT_VERSION, n, pre.block),
            np.ascontiguousarray(pre.indices, dtype=_INDEX).tobytes(),
            np.ascontiguousarray(pre.records).tobytes(),
        )
    )


def decode_pre_images(blob: bytes) -> BlockPreImages:
    """Inverse of `encode_pre_images`; the arrays are writable copies.

    Raises ValueError if the blob is not a well-formed pre-image record.
    """
    if len(blob) < _HEADER.size:
        raise ValueError(f"pre-image blob of {len(blob)} bytes is shorter than its header")
    version, n, block = _HEADER.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise ValueError(f"pre-image format version {version}, expected {FORMAT_VERSION}")
    expected = _HEADER.size + n * (_INDEX.itemsize + RECORD_SIZE)
    if len(blob) != expected:
        raise ValueError(f"block {block}: {len(blob)} bytes for {n} pre-images, need {expected}")
    body = bytearray(memoryview(blob)[_HEADER.size :])  # one copy; both arrays view it
    indices = np.frombuffer(body, dtype=_INDEX, count=n).astype(np.int64, copy=False)
    records = np.frombuffer(body, dtype=SWAP_STATE, count=n, offset=n * _INDEX.itemsize)
    return BlockPreImages(int(block), indices, records)


def _key(block: int) -> bytes:
    return _PREFIX + _KEY.pack(block)


@dataclass(slots=True)
class SpillStats:
    blocks_written: int = 0
    blocks_read: int = 0  # returned by get or take_newest
    blocks_pruned: int = 0  # deleted for being older than `depth` blocks
    blocks_dropped: int = 0  # deleted because a put rewrote history at or below them
    bytes_written: int = 0


@final
class RocksSpill:
    """`PreImageSpill` over a RocksDB directory that this process holds exclusively."""

    def __init__(self, path: str | os.PathLike[str], depth: int = DEFAULT_SPILL_DEPTH) -> None:
        if depth < 1:
            raise ValueError(f"spill depth must be at least 1, got {depth}")
        self.path = os.fspath(path)
        self.depth = depth
        self.stats = SpillStats()
        self._db = _open(self.path)
        self._write_opt = WriteOptions()
        # The stub declares disable_wal as a method; the binding exposes a property.
        self._write_opt.disable_wal = True  # type: ignore[method-assign,assignment]
        self._closed = False
        # Block numbers held, oldest first: newest/oldest/len/blocks without a DB read.
        self._blocks: deque[int] = deque(self._scan_blocks())
        self._prune()

    # -- PreImageSpill ----------------------------------------------------------------
    def put(self, pre_images: BlockPreImages) -> None:
        """Store a block (one write), deleting what falls out of `depth`.

        A block at or below the newest spilled one replaces history: spilled blocks from
        it upwards belong to a chain the ring has since left, and are dropped with it.
        """
        self.put_many((pre_images,))

    def put_many(self, entries: Sequence[BlockPreImages]) -> None:
        """Store blocks of ascending numbers in one write, as `put` of each in turn would
        (a block the later ones push out of `depth` is never written). On an error
        nothing is written."""
        if not entries:
            return
        blocks = [self._check_block(pre.block) for pre in entries]
        if any(a >= b for a, b in itertools.pairwise(blocks)):
            raise ValueError(f"spilled blocks must ascend, got {blocks}")
        floor = blocks[-1] - self.depth + 1
        kept = [(b, encode_pre_images(pre)) for b, pre in zip(blocks, entries, strict=True)]
        kept = [(b, value) for b, value in kept if b >= floor]
        dropped = self._count_from(blocks[0])
        pruned = min(self._count_below(floor), len(self._blocks) - dropped)
        batch = WriteBatch(raw_mode=True)
        # Point deletes of known keys: range tombstones, one per block, would pile up.
        for i in range(pruned):
            batch.delete(_key(self._blocks[i]))
        for i in range(1, dropped + 1):
            batch.delete(_key(self._blocks[-i]))
        for b, value in kept:
            batch.put(_key(b), value)
        self._write(batch)
        for _ in range(dropped):
            self._blocks.pop()
        for _ in range(pruned):
            self._blocks.popleft()
        self._blocks.extend(b for b, _ in kept)
        if dropped:
            log.info("spill put of block %d dropped %d spilled blocks >= it", blocks[0], dropped)
        self.stats.blocks_dropped += dropped
        self.stats.blocks_pruned += pruned + len(entries) - len(kept)
        self.stats.blocks_written += len(entries)
        self.stats.bytes_written += sum(len(value) for _, value in kept)

    def take_newest(self, block: int) -> BlockPreImages | None:
        """Remove and return `block` if it is the newest spilled block, else None."""
        if not self._blocks or self._blocks[-1] != block:
            return None
        pre = self._read(block)
        try:
            self._db.delete(_key(block), self._write_opt)
        except Exception as exc:
            raise SpillError(self.path, f"delete of block {block} failed: {exc}") from exc
        self._blocks.pop()
        return pre

    def get(self, block: int) -> BlockPreImages | None:
        if not self._blocks or not self._blocks[0] <= block <= self._blocks[-1]:
            return None
        return self._read(block, missing_ok=True)

    def blocks(self) -> list[int]:
        """Spilled blocks, oldest first."""
        return list(self._blocks)

    def clear(self) -> None:
        self._delete_range(_PREFIX, _PREFIX_END)
        self._blocks.clear()

    # -- extras -----------------------------------------------------------------------
    def discard_from(self, block: int) -> int:
        """Delete spilled blocks >= `block` (e.g. after restoring an older checkpoint)."""
        if not self._blocks or self._blocks[-1] < block:
            return 0
        dropped = self._count_from(block)
        self._delete_range(_key(max(block, 0)), _PREFIX_END)
        for _ in range(dropped):
            self._blocks.pop()
        self.stats.blocks_dropped += dropped
        return dropped

    @property
    def newest_block(self) -> int | None:
        return self._blocks[-1] if self._blocks else None

    @property
    def oldest_block(self) -> int | None:
        return self._blocks[0] if self._blocks else None

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, block: object) -> bool:
        return block in self._blocks

    def close(self) -> None:
        """Flush and release the DB lock; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._db.flush()
        finally:
            self._db.close()

    def __enter__(self) -> RocksSpill:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------
    def _check_block(self, block: int) -> int:
        if not 0 <= block <= _BLOCK_MAX:
            raise ValueError(f"block number {block} is not a u64")
        if self._closed:
            raise SpillError(self.path, "spill is closed")
        return block

    def _scan_blocks(self) -> list[int]:
        blocks = []
        for key in self._db.keys(from_key=_PREFIX):
            if not isinstance(key, bytes) or key >= _PREFIX_END:
                break
            if len(key) != 1 + _KEY.size:
                raise SpillError(self.path, f"unexpected key {key.hex()} in the spill")
            blocks.append(int(_KEY.unpack_from(key, 1)[0]))
        return blocks

    def _count_below(self, cutoff: int) -> int:
        count = 0
        for b in self._blocks:
            if b >= cutoff:
                break
            count += 1
        return count

    def _count_from(self, block: int) -> int:
        count = 0
        for b in reversed(self._blocks):
            if b < block:
                break
            count += 1
        return count

    def _prune(self) -> None:
        if not self._blocks:
            return
        pruned = self._count_below(self._blocks[-1] - self.depth + 1)
        if pruned:
            self._delete_range(_PREFIX, _key(self._blocks[pruned]))
            for _ in range(pruned):
                self._blocks.popleft()
            self.stats.blocks_pruned += pruned

    @overload
    def _read(self, block: int) -> BlockPreImages: ...
    @overload
    def _read(self, block: int, *, missing_ok: bool) -> BlockPreImages | None: ...

    def _read(self, block: int, *, missing_ok: bool = False) -> BlockPreImages | None:
        if self._closed:
            raise SpillError(self.path, "spill is closed")
        try:
            blob = self._db.get(_key(block))
        except Exception as exc:
            raise SpillError(self.path, f"read of block {block} failed: {exc}") from exc
        if blob is None:
            if missing_ok:  # a gap in the block numbers
                return None
            raise SpillError(self.path, f"block {block} is listed but missing from the DB")
        try:
            pre = decode_pre_images(blob)
        except ValueError as exc:
            raise SpillError(self.path, f"block {block} is corrupt: {exc}") from exc
        if pre.block != block:
            raise SpillError(self.path, f"key of block {block} holds block {pre.block}")
        self.stats.blocks_read += 1
        return pre

    def _write(self, batch: WriteBatch) -> None:
        if self._closed:
            raise SpillError(self.path, "spill is closed")
        try:
            self._db.write(batch, self._write_opt)
        except Exception as exc:
            raise SpillError(self.path, f"write failed: {exc}") from exc

    def _delete_range(self, begin: bytes, end: bytes) -> None:
        batch = WriteBatch(raw_mode=True)
        batch.delete_range(begin, end)
        self._write(batch)


def _open(path: str) -> Rdict:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    # Values are mostly random price bytes: compression costs time and saves little.
    options.set_compression_type(DBCompressionType.none())
    options.set_write_buffer_size(32 << 20)
    try:
        return Rdict(path, options)
    except Exception as exc:  # rocksdict raises plain Exception for I/O and lock errors
        raise SpillError(path, f"cannot open RocksDB: {exc}") from exc
