"""Whether the arena can vouch for its state, and why not when it cannot.

    UNSEEDED ──(state file, checkpoint, RPC resync, or the first block taken)──▶ SYNCED
    UNSEEDED / SYNCED / UNSYNCED ──(a loss: LossCause)──▶ UNSYNCED
    UNSYNCED ──(state file, checkpoint, RPC resync)──▶ SYNCED

A block applied while UNSYNCED leaves it UNSYNCED: only a state from outside the stream
makes it trustworthy again. The loss that made it UNSYNCED is the one kept (later ones
follow from it or come on top of it: they are logged and counted). Its cause is a fixed
vocabulary (it labels `arena_block_discarded_total` where a block or message was
discarded); its detail is free text for logs and summaries only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import final


class SyncState(Enum):
    UNSEEDED = "unseeded"  # nothing seeded or taken from the stream yet: nothing to vouch for
    SYNCED = "synced"
    UNSYNCED = "unsynced"


class LossCause(Enum):
    """Why the arena stopped vouching for its state."""

    # the stream
    SEQ_GAP = "seq_gap"
    PRODUCER_RESTART = "producer_restart"
    DECODE_ERROR = "decode_error"
    CONNECTION_LOST = "connection_lost"
    INPUT_ENDED = "input_ended"  # a recording or pipe ended inside a block or its framing
    STOPPED = "stopped"  # a signal stopped the arena part-way through its input
    # block framing
    BEGIN_INSIDE_BLOCK = "begin_inside_block"
    UPDATE_OUTSIDE_BLOCK = "update_outside_block"
    UPDATE_BLOCK_MISMATCH = "update_block_mismatch"
    END_WITHOUT_BEGIN = "end_without_begin"
    END_BLOCK_MISMATCH = "end_block_mismatch"
    NUM_UPDATES_MISMATCH = "num_updates_mismatch"
    # block order against the tip
    REVERT_NOT_TIP = "revert_not_tip"
    BLOCK_NOT_AFTER_TIP = "block_not_after_tip"
    BLOCK_GAP = "block_gap"
    # reorg envelope framing
    REORG_START_INSIDE_BLOCK = "reorg_start_inside_block"
    REORG_START_INSIDE_REORG = "reorg_start_inside_reorg"
    EPILOGUE_INSIDE_BLOCK = "epilogue_inside_block"
    EPILOGUE_OUTSIDE_REORG = "epilogue_outside_reorg"
    REORG_COMPLETE_INSIDE_BLOCK = "reorg_complete_inside_block"
    REORG_TIP_MISMATCH = "reorg_tip_mismatch"
    # state from outside the stream
    RPC_HYDRATION_FAILED = "rpc_hydration_failed"
    UNSYNCED_STATE_LOADED = "unsynced_state_loaded"


@final
@dataclass(frozen=True, slots=True)
class SyncLoss:
    cause: LossCause
    detail: str
    tip_block: int | None  # the arena's tip when it happened

    def __str__(self) -> str:
        return f"{self.cause.value}: {self.detail}"


@final
@dataclass(frozen=True, slots=True)
class SyncStatus:
    """The engine's sync state; `loss` is the one that made it UNSYNCED, else None."""

    state: SyncState
    loss: SyncLoss | None = None

    @property
    def synced(self) -> bool:
        return self.state is SyncState.SYNCED

    @property
    def unsynced_reason(self) -> str | None:
        """The loss as text while UNSYNCED; None when SYNCED or UNSEEDED."""
        return str(self.loss) if self.loss is not None else None

    def __str__(self) -> str:
        match self.state:
            case SyncState.SYNCED:
                return "synced"
            case SyncState.UNSEEDED:
                return "unseeded (no state loaded and no block taken yet)"
            case SyncState.UNSYNCED:
                return f"UNSYNCED ({self.loss})"


UNSEEDED = SyncStatus(SyncState.UNSEEDED)
SYNCED = SyncStatus(SyncState.SYNCED)
