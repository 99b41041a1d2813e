"""The execution module: opportunities turned into simulated, signed, journaled
transactions for the executor contract. Dry run unless told otherwise."""

from executor.errors import (
    ChainRpcError,
    ContractError,
    ExecutorError,
    PathEncodingError,
    RouteError,
    SigningKeyError,
)
from executor.journal import AttemptStatus, JournalEntry, JournalWriter, read_journal
from executor.path import HOP_BYTES, MAX_HOPS, Hop, HopKind, decode_path, encode_path
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings

__all__ = [
    "HOP_BYTES",
    "MAX_HOPS",
    "AttemptStatus",
    "ChainRpcError",
    "ContractError",
    "ExecutorError",
    "ExecutorSettings",
    "Hop",
    "HopKind",
    "JournalEntry",
    "JournalWriter",
    "OpportunityExecutor",
    "PathEncodingError",
    "RouteError",
    "SigningKeyError",
    "decode_path",
    "encode_path",
    "read_journal",
]
