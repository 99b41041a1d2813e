"""Checkpoints of the whole arena state in RocksDB, so a restart resumes at a block.

A checkpoint lives in its own RocksDB directory, not in the spill's: the two differ in
durability (checkpoint writes are synced through the WAL; spill writes skip the WAL),
in value size (megabytes per part here, a few kilobytes per block there) and in
lifetime (the spill may be wiped at any time, the checkpoints must survive it). Each
store owns its handle and its lock, so neither has to be handed the other's DB.

Layout, all keys raw bytes:
  b"k" + block (u64 BE) + b"/" + part   one key per part (records, ticks, ring, ...)
  b"k" + block (u64 BE) + b"/manifest"  digest(16) + msgpack(meta and each part's digest)
  b"pointer"                            msgpack list of retained blocks, newest first
One WriteBatch writes every part, deletes what is no longer retained and writes the
pointer last, so a checkpoint is either complete and listed or not there at all.
Checkpoints the pointer does not list are ignored and deleted by the next save.

Tick liquidity values are Python ints up to 128 bits (and signed): msgpack ints stop at
64 bits, so each value is stored as minimal little-endian two's complement bytes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import time
from types import TracebackType
from typing import Final, final

import msgspec
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from arena.errors import CheckpointError
from arena.snapshot_ring import BlockPreImages
from arena.spill import decode_pre_images, encode_pre_images
from arena.state_table import RECORD_SIZE

log = logging.getLogger(__name__)

DEFAULT_KEEP: Final = 2
FORMAT_VERSION: Final = 1

TickMapsSnapshot = dict[int, dict[int, tuple[int, int]]]


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True, eq=False):
    """The arena at the end of `block`. Byte fields are per pool, in registry index order.

    `ring` holds the snapshot ring's entries oldest first (views are fine: `save` copies).
    Not comparable with `==` (the ring holds arrays).
    """

    block: int
    stream_seq: int | None
    # where the source stands at `block` (a JetStream stream sequence) and how many frames
    # of that message were applied (None: all of it)
    source_seq: int | None = None
    source_frames: int | None = None
    pool_keys: list[bytes]
    protocols: bytes  # uint8 per pool
    records: bytes  # RECORD_SIZE bytes per pool (the StateTable's live records)
    status: bytes  # uint8 per pool
    tick_maps: TickMapsSnapshot
    ring: list[BlockPreImages]
    created_at: float = msgspec.field(default_factory=time.time)


class _PoolTicks(msgspec.Struct, array_like=True, gc=False):
    pool: int
    ticks: list[int]
    net: list[bytes]
    gross: list[bytes]


class _Manifest(msgspec.Struct, kw_only=True):
    version: int
    block: int
    stream_seq: int | None
    created_at: float
    pools: int
    parts: dict[str, bytes]  # part name -> blake2b-16 digest of its value
    source_seq: int | None = None
    source_frames: int | None = None


_PARTS: Final = ("pool_keys", "protocols", "records", "status", "ticks", "ring")
_PREFIX: Final = b"k"
_PREFIX_END: Final = b"l"
_POINTER: Final = b"pointer"
_BLOCK: Final = struct.Struct(">Q")
_DIGEST_SIZE: Final = 16

_encoder: Final = msgspec.msgpack.Encoder()
_manifest_decoder: Final = msgspec.msgpack.Decoder(_Manifest)
_pointer_decoder: Final = msgspec.msgpack.Decoder(list[int])
_bytes_list_decoder: Final = msgspec.msgpack.Decoder(list[bytes])
_ticks_decoder: Final = msgspec.msgpack.Decoder(list[_PoolTicks])


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest()


def _key(block: int, part: str) -> bytes:
    return _PREFIX + _BLOCK.pack(block) + b"/" + part.encode()


def int_to_bytes(value: int) -> bytes:
    """Minimal-ish little-endian two's complement: any Python int round-trips."""
    return value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)


def int_from_bytes(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


def encode_tick_maps(tick_maps: TickMapsSnapshot) -> bytes:
    pools = [
        _PoolTicks(
            pool=pool,
            ticks=list(ticks),
            net=[int_to_bytes(net) for net, _ in ticks.values()],
            gross=[int_to_bytes(gross) for _, gross in ticks.values()],
        )
        for pool, ticks in tick_maps.items()
    ]
    return _encoder.encode(pools)


def decode_tick_maps(blob: bytes) -> TickMapsSnapshot:
    out: TickMapsSnapshot = {}
    for p in _ticks_decoder.decode(blob):
        if not len(p.ticks) == len(p.net) == len(p.gross):
            raise ValueError(f"pool {p.pool}: tick and value columns differ in length")
        out[p.pool] = {
            t: (int_from_bytes(n), int_from_bytes(g))
            for t, n, g in zip(p.ticks, p.net, p.gross, strict=True)
        }
    return out


def _shape_error(cp: Checkpoint) -> str | None:
    """Why the checkpoint's per-pool columns or ring are inconsistent, or None."""
    n = len(cp.pool_keys)
    if len(cp.protocols) != n or len(cp.status) != n:
        return f"{n} pool keys but {len(cp.protocols)} protocols, {len(cp.status)} statuses"
    if len(cp.records) != n * RECORD_SIZE:
        return f"{len(cp.records)} record bytes for {n} pools"
    ring_blocks = [pre.block for pre in cp.ring]
    if ring_blocks != sorted(set(ring_blocks)) or (ring_blocks and ring_blocks[-1] > cp.block):
        return f"ring blocks {ring_blocks[:3]}..{ring_blocks[-3:]} not increasing up to tip"
    return None


def _encode_parts(cp: Checkpoint) -> dict[str, bytes]:
    return {
        "pool_keys": _encoder.encode(cp.pool_keys),
        "protocols": bytes(cp.protocols),
        "records": bytes(cp.records),
        "status": bytes(cp.status),
        "ticks": encode_tick_maps(cp.tick_maps),
        "ring": _encoder.encode([encode_pre_images(pre) for pre in cp.ring]),
    }


def _decode_parts(manifest: _Manifest, parts: dict[str, bytes]) -> Checkpoint:
    return Checkpoint(
        block=manifest.block,
        stream_seq=manifest.stream_seq,
        source_seq=manifest.source_seq,
        source_frames=manifest.source_frames,
        pool_keys=_bytes_list_decoder.decode(parts["pool_keys"]),
        protocols=parts["protocols"],
        records=parts["records"],
        status=parts["status"],
        tick_maps=decode_tick_maps(parts["ticks"]),
        ring=[decode_pre_images(b) for b in _bytes_list_decoder.decode(parts["ring"])],
        created_at=manifest.created_at,
    )


@final
class CheckpointStore:
    """The last `keep` checkpoints in a RocksDB directory that this process holds."""

    def __init__(
        self, path: str | os.PathLike[str], *, keep: int = DEFAULT_KEEP, sync: bool = True
    ) -> None:
        if keep < 1:
            raise ValueError(f"must keep at least one checkpoint, got {keep}")
        self.path = os.fspath(path)
        self.keep = keep
        self.bytes_written = 0
        self.corrupt_loads = 0  # checkpoints that failed verification on load
        self._write_opt = WriteOptions()
        self._write_opt.sync = sync
        self._db = _open(self.path)
        self._closed = False

    def save(self, checkpoint: Checkpoint) -> int:
        """Write a checkpoint atomically and drop those beyond `keep`; returns bytes written."""
        block = checkpoint.block
        if not 0 <= block < 1 << 63:
            raise CheckpointError(self.path, "block number out of range", block)
        reason = _shape_error(checkpoint)
        if reason is not None:
            raise CheckpointError(self.path, f"inconsistent checkpoint: {reason}", block)
        self._check_open(block)
        parts = _encode_parts(checkpoint)
        manifest = _encoder.encode(
            _Manifest(
                version=FORMAT_VERSION,
                block=block,
                stream_seq=checkpoint.stream_seq,
                source_seq=checkpoint.source_seq,
                source_frames=checkpoint.source_frames,
                created_at=checkpoint.created_at,
                pools=len(checkpoint.pool_keys),
                parts={name: _digest(value) for name, value in parts.items()},
            )
        )
        retained = [block, *(b for b in self._pointer() if b != block)][: self.keep]
        batch = WriteBatch(raw_mode=True)
        self._delete_unretained(batch, retained)
        for name, value in parts.items():
            batch.put(_key(block, name), value)
        batch.put(_key(block, "manifest"), _digest(manifest) + manifest)
        batch.put(_POINTER, _encoder.encode(retained))  # last: the commit point
        try:
            self._db.write(batch, self._write_opt)
        except Exception as exc:  # rocksdict raises plain Exception for I/O errors
            raise CheckpointError(self.path, f"write failed: {exc}", block) from exc
        written = sum(map(len, parts.values())) + len(manifest)
        self.bytes_written += written
        log.info("checkpoint of block %d written (%d bytes)", block, written)
        return written

    def load_latest(self) -> Checkpoint | None:
        """The newest checkpoint that verifies, falling back to older ones; None if none."""
        self._check_open(None)
        try:
            blocks = self.blocks()
        except CheckpointError as exc:
            self.corrupt_loads += 1
            log.error("checkpoint pointer unusable, no checkpoint loaded: %s", exc)
            return None
        for block in blocks:
            try:
                return self.load(block)
            except CheckpointError as exc:
                self.corrupt_loads += 1
                log.warning("%s; falling back to the previous checkpoint", exc)
        if blocks:
            log.error("no retained checkpoint in %s verifies (blocks %s)", self.path, blocks)
        return None

    def load(self, block: int) -> Checkpoint:
        """The checkpoint of `block`, verified; CheckpointError if missing or corrupt."""
        if block not in self.blocks():
            raise CheckpointError(self.path, "no retained checkpoint", block)
        manifest = self._read_manifest(block)
        parts: dict[str, bytes] = {}
        for name in _PARTS:
            value = self._get(_key(block, name), block)
            if value is None or _digest(value) != manifest.parts.get(name):
                raise CheckpointError(self.path, f"part {name!r} missing or corrupt", block)
            parts[name] = value
        try:
            checkpoint = _decode_parts(manifest, parts)
        except (msgspec.DecodeError, ValueError) as exc:
            raise CheckpointError(self.path, f"undecodable: {exc}", block) from exc
        reason = _shape_error(checkpoint)
        if reason is not None:
            raise CheckpointError(self.path, f"inconsistent checkpoint: {reason}", block)
        return checkpoint

    def blocks(self) -> list[int]:
        """Blocks of the retained checkpoints, newest first."""
        return self._pointer()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------
    def _check_open(self, block: int | None) -> None:
        if self._closed:
            raise CheckpointError(self.path, "store is closed", block)

    def _get(self, key: bytes, block: int | None) -> bytes | None:
        self._check_open(block)
        try:
            value = self._db.get(key)
        except Exception as exc:
            raise CheckpointError(self.path, f"read failed: {exc}", block) from exc
        return value if isinstance(value, bytes) else None

    def _pointer(self) -> list[int]:
        raw = self._get(_POINTER, None)
        if raw is None:
            return []
        try:
            return _pointer_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise CheckpointError(self.path, f"corrupt pointer: {exc}") from exc

    def _read_manifest(self, block: int) -> _Manifest:
        raw = self._get(_key(block, "manifest"), block)
        if raw is None or _digest(raw[_DIGEST_SIZE:]) != raw[:_DIGEST_SIZE]:
            raise CheckpointError(self.path, "manifest missing or corrupt", block)
        try:
            manifest = _manifest_decoder.decode(raw[_DIGEST_SIZE:])
        except msgspec.DecodeError as exc:
            raise CheckpointError(self.path, f"undecodable manifest: {exc}", block) from exc
        if manifest.version != FORMAT_VERSION or manifest.block != block:
            raise CheckpointError(
                self.path, f"manifest v{manifest.version} of block {manifest.block}", block
            )
        return manifest

    @staticmethod
    def _delete_unretained(batch: WriteBatch, retained: list[int]) -> None:
        """Range-delete every checkpoint key outside the retained blocks (orphans too)."""
        start = _PREFIX
        for block in sorted(retained):
            batch.delete_range(start, _PREFIX + _BLOCK.pack(block))
            start = _PREFIX + _BLOCK.pack(block + 1)
        batch.delete_range(start, _PREFIX_END)


def _open(path: str) -> Rdict:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    try:
        return Rdict(path, options)
    except Exception as exc:  # rocksdict raises plain Exception for I/O and lock errors
        raise CheckpointError(path, f"cannot open RocksDB: {exc}") from exc
