"""Exact pool state beside a Reth node: the engine that applies and reverts blocks, the
assembler that makes whole blocks of the stream, the pipeline that serves settled points
to its subscribers, and their state files, spill and checkpoints."""

from arena.block_assembler import AssemblerPhase, BlockAssembler, Settled
from arena.engine import ArenaEngine
from arena.errors import (
    ArenaError,
    CheckpointError,
    SpillError,
    StateUnavailableError,
    TickMapError,
    UnknownPoolError,
)
from arena.metrics import ArenaMetrics
from arena.pipeline import AlreadySubscribedError, Pipeline, PipelineConfig, open_pipeline
from arena.pool_status import PoolStatus, StaleReason
from arena.state_file import StateFileError, load_state, read_state_file, write_state_file
from arena.sync_state import LossCause, SyncLoss, SyncState, SyncStatus
from arena.update_checks import Violation

__all__ = [
    "AlreadySubscribedError",
    "ArenaEngine",
    "ArenaError",
    "ArenaMetrics",
    "AssemblerPhase",
    "BlockAssembler",
    "CheckpointError",
    "LossCause",
    "Pipeline",
    "PipelineConfig",
    "PoolStatus",
    "Settled",
    "SpillError",
    "StaleReason",
    "StateFileError",
    "StateUnavailableError",
    "SyncLoss",
    "SyncState",
    "SyncStatus",
    "TickMapError",
    "UnknownPoolError",
    "Violation",
    "load_state",
    "open_pipeline",
    "read_state_file",
    "write_state_file",
]
