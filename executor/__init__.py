"""The execution module: opportunities turned into simulated, signed, journaled
transactions for the executor contract. Dry run unless told otherwise."""

from executor.errors import ExecutorError, PathEncodingError
from executor.journal import AttemptStatus, JournalEntry
from executor.path import HOP_BYTES, MAX_HOPS, Hop, HopKind, decode_path, encode_path

__all__ = [
    "HOP_BYTES",
    "MAX_HOPS",
    "AttemptStatus",
    "ExecutorError",
    "Hop",
    "HopKind",
    "JournalEntry",
    "PathEncodingError",
    "decode_path",
    "encode_path",
]
