"""Turns the message stream into whole blocks and reorg envelopes for the engine.

Checks `stream_seq` continuity (a gap or a producer restart means lost messages; a
duplicate is dropped), block framing (`BeginBlock` … `PoolUpdate`* … `EndBlock` with
matching block number and `num_updates`) and the reorg envelope. A block reaches the
engine only after its `EndBlock` validates. Anything lost discards the open block,
marks the engine unsynced (with its `LossCause`), and skips to the next block boundary.

Where the assembler stands is one `AssemblerPhase`:

    SKIPPING_TO_BOUNDARY ─BeginBlock─▶ IN_BLOCK ─EndBlock─▶ AT_BOUNDARY ─BeginBlock─▶ …
    SKIPPING_TO_BOUNDARY / AT_BOUNDARY ─ReorgStart─▶ IN_REORG ⇄ IN_REORG_BLOCK
    IN_REORG ─ReorgComplete─▶ AT_BOUNDARY;   any phase ─loss─▶ SKIPPING_TO_BOUNDARY
    IN_REORG / IN_REORG_BLOCK ─loss─▶ SKIPPING_REORG ─ReorgComplete─▶ AT_BOUNDARY
    SKIPPING_TO_BOUNDARY ─revert BeginBlock or ReorgEpilogue─▶ SKIPPING_REORG
"""

from __future__ import annotations

import logging
from collections import deque
from enum import Enum
from typing import Final, NamedTuple, final

from arena.engine import ArenaEngine
from arena.sync_state import LossCause, SyncState
from exex_bridge import messages as m

log = logging.getLogger(__name__)

DUPLICATE_WINDOW: Final = 4096


class Settled(NamedTuple):
    """A point where the state is settled: after an EndBlock outside a reorg envelope, or
    after ReorgComplete. `changed` holds the pool indices changed since the last one."""

    block: int
    base_fee_per_gas: int
    changed: frozenset[int]
    after_reorg: bool
    sync: SyncState  # the engine's state at this point: only SYNCED is trustworthy

    @property
    def trustworthy(self) -> bool:
        return self.sync is SyncState.SYNCED


class AssemblerPhase(Enum):
    # A client sees the stream from "now": whatever precedes the first block boundary,
    # or follows a loss, belongs to state the arena takes from elsewhere.
    SKIPPING_TO_BOUNDARY = "skipping_to_boundary"
    AT_BOUNDARY = "at_boundary"
    IN_BLOCK = "in_block"
    IN_REORG = "in_reorg"  # inside an envelope, between its blocks
    IN_REORG_BLOCK = "in_reorg_block"
    # a loss inside a reorg envelope (or a client joining mid-envelope): the envelope is
    # skipped as a whole, up to its ReorgComplete
    SKIPPING_REORG = "skipping_reorg"

    @property
    def in_block(self) -> bool:
        return self in _IN_BLOCK

    @property
    def in_reorg(self) -> bool:
        return self in _IN_REORG

    @property
    def at_boundary(self) -> bool:
        """No block and no envelope is open: stopping here loses nothing."""
        return not (self.in_block or self.in_reorg)


_IN_BLOCK: Final = frozenset({AssemblerPhase.IN_BLOCK, AssemblerPhase.IN_REORG_BLOCK})
_IN_REORG: Final = frozenset({AssemblerPhase.IN_REORG, AssemblerPhase.IN_REORG_BLOCK})
_SKIPPING: Final = frozenset({AssemblerPhase.SKIPPING_TO_BOUNDARY, AssemblerPhase.SKIPPING_REORG})


class _OpenBlock(NamedTuple):
    begin: m.BeginBlock
    events: list[m.PoolUpdateMessage]
    # the frame of each event when every one came with its frame (the columnar path)
    payloads: list[bytes]

    def frames(self) -> list[bytes] | None:
        return self.payloads if len(self.payloads) == len(self.events) else None


@final
class BlockAssembler:
    def __init__(self, engine: ArenaEngine) -> None:
        self.engine = engine
        self.metrics = engine.metrics
        self.last_seq: int | None = None
        self._recent: dict[int, m.SequencedMessage] = {}
        self._recent_order: deque[int] = deque()
        self.phase = AssemblerPhase.SKIPPING_TO_BOUNDARY
        self._block: _OpenBlock | None = None  # the block open while `phase.in_block`
        self.base_fee_per_gas = 0

    @property
    def open_block(self) -> _OpenBlock | None:
        return self._block if self.phase.in_block else None

    # -- input --------------------------------------------------------------------------
    def feed(self, msg: m.ControlMessage, payload: bytes | None = None) -> Settled | None:
        """`payload`: the frame `msg` was decoded from; a block whose every update came
        with its frame is applied by the columnar path (engine.apply_block)."""
        match msg:
            case m.Ping() | m.Pong():
                return None
            case m.UpdateWhitelist():
                self.metrics.updates_ignored.labels(reason="whitelist_frame").inc()
                return None
        if not self._check_seq(msg):
            return None
        if self.phase is AssemblerPhase.SKIPPING_REORG:
            return self._skip_envelope(msg)
        match msg:
            case m.BeginBlock():
                self._on_begin(msg)
            case m.PoolUpdate():
                self._on_update(msg, payload)
            case m.EndBlock():
                return self._on_end(msg)
            case m.ReorgStart():
                self._on_reorg_start(msg)
            case m.ReorgEpilogue():
                self._on_epilogue(msg)
            case m.ReorgComplete():
                return self._on_reorg_complete(msg)
        return None

    def on_decode_error(self, stream_seq: int | None) -> None:
        """A frame that did not decode: its content is lost."""
        if stream_seq is not None:
            self.last_seq = stream_seq
        self._lose(LossCause.DECODE_ERROR, f"undecodable frame (stream_seq {stream_seq})")

    def on_connection_lost(self) -> None:
        """EOF or a dropped connection: the producer keeps no backlog for us."""
        self.on_stream_end(LossCause.CONNECTION_LOST, "connection to the producer lost")

    def on_producer_restart(self, detail: str) -> None:
        """The producer began a new session (marked by a relay): counted as a restart."""
        self.metrics.producer_restarts.inc()
        self.on_stream_end(LossCause.PRODUCER_RESTART, detail)

    def on_stream_end(self, cause: LossCause, detail: str) -> None:
        """The stream ended where it should not have (`cause` says how): what is open is
        lost, and whatever comes next is a new stream."""
        self._lose(cause, detail)
        self.phase = AssemblerPhase.SKIPPING_TO_BOUNDARY  # a new stream starts anywhere
        self.last_seq = None
        self._recent.clear()
        self._recent_order.clear()

    # -- sequencing ---------------------------------------------------------------------
    def _check_seq(self, msg: m.SequencedMessage) -> bool:
        seq = msg.stream_seq
        last = self.last_seq
        if last is not None and seq != last + 1:
            if seq <= last and self._recent.get(seq) == msg:
                self.metrics.duplicates.inc()
                return False
            if seq <= last:
                self.metrics.producer_restarts.inc()
                self._lose(LossCause.PRODUCER_RESTART, f"stream_seq went from {last} to {seq}")
                self._recent.clear()
                self._recent_order.clear()
            else:
                self.metrics.seq_gaps.inc()
                self.metrics.seq_lost_messages.inc(seq - last - 1)
                self._lose(LossCause.SEQ_GAP, f"stream_seq jumped from {last} to {seq}")
        self.last_seq = seq
        self._recent[seq] = msg
        self._recent_order.append(seq)
        if len(self._recent_order) > DUPLICATE_WINDOW:
            self._recent.pop(self._recent_order.popleft(), None)
        return True

    def _lose(self, cause: LossCause, detail: str) -> None:
        """Discard whatever is open, mark unsynced, skip to the next block boundary."""
        block = self.open_block
        if block is not None:
            log.warning(
                "block %d discarded (%s): %s", block.begin.block_number, cause.value, detail
            )
        elif self.phase not in _SKIPPING:
            log.warning("stream loss (%s): %s", cause.value, detail)
        skipping = self.phase in _SKIPPING
        if not skipping:
            self.metrics.count_discard(cause)
        self._block = None
        if self.phase.in_reorg or self.phase is AssemblerPhase.SKIPPING_REORG:
            self.phase = AssemblerPhase.SKIPPING_REORG
        else:
            self.phase = AssemblerPhase.SKIPPING_TO_BOUNDARY
        self.engine.mark_unsynced(cause, detail)

    def _skip_envelope(self, msg: m.SequencedMessage) -> Settled | None:
        """Inside an envelope that cannot be applied: nothing of it is taken; its
        ReorgComplete is the next boundary, where the tip follows the stream."""
        if isinstance(msg, m.ReorgComplete):
            self.phase = AssemblerPhase.AT_BOUNDARY
            self.engine.skip_to(msg.final_tip_block)
            return self._settle(msg.final_tip_block, after_reorg=True)
        if isinstance(msg, m.PoolUpdate):
            self.metrics.updates_ignored.labels(reason="skipped_reorg_envelope").inc()
        return None

    # -- blocks -------------------------------------------------------------------------
    def _on_begin(self, msg: m.BeginBlock) -> None:
        if self.phase is AssemblerPhase.SKIPPING_TO_BOUNDARY and msg.is_revert:
            # reverts come only inside an envelope: this one began before what was lost
            self.phase = AssemblerPhase.SKIPPING_REORG
            return
        if self.phase.in_block:
            self._lose(
                LossCause.BEGIN_INSIDE_BLOCK, f"BeginBlock {msg.block_number} inside a block"
            )
        in_reorg = self.phase is AssemblerPhase.IN_REORG
        self.phase = AssemblerPhase.IN_REORG_BLOCK if in_reorg else AssemblerPhase.IN_BLOCK
        self._block = _OpenBlock(msg, [], [])

    def _on_update(self, msg: m.PoolUpdate, payload: bytes | None) -> None:
        block = self.open_block
        if block is None:
            if self.phase is AssemblerPhase.SKIPPING_TO_BOUNDARY:
                self.metrics.updates_ignored.labels(reason="skipped_to_block_boundary").inc()
            else:
                self._lose(LossCause.UPDATE_OUTSIDE_BLOCK, f"PoolUpdate seq {msg.stream_seq}")
            return
        event = msg.event
        if event.block_number != block.begin.block_number or (
            event.is_revert != block.begin.is_revert
        ):
            self._lose(
                LossCause.UPDATE_BLOCK_MISMATCH,
                f"update for block {event.block_number} (revert={event.is_revert}) inside "
                f"block {block.begin.block_number} (revert={block.begin.is_revert})",
            )
            return
        block.events.append(event)
        if payload is not None:
            block.payloads.append(payload)

    def _on_end(self, msg: m.EndBlock) -> Settled | None:
        block = self.open_block
        if block is None:
            if self.phase is not AssemblerPhase.SKIPPING_TO_BOUNDARY:
                self._lose(LossCause.END_WITHOUT_BEGIN, f"EndBlock {msg.block_number}")
            return None
        begin = block.begin
        if msg.block_number != begin.block_number:
            self._lose(
                LossCause.END_BLOCK_MISMATCH,
                f"EndBlock {msg.block_number} closes block {begin.block_number}",
            )
            return None
        if msg.num_updates != len(block.events):
            self._lose(
                LossCause.NUM_UPDATES_MISMATCH,
                f"EndBlock says {msg.num_updates} updates, {len(block.events)} received",
            )
            return None
        in_reorg = self.phase is AssemblerPhase.IN_REORG_BLOCK
        self.phase = AssemblerPhase.IN_REORG if in_reorg else AssemblerPhase.AT_BOUNDARY
        self._block = None
        return self._commit(begin, block.events, block.frames())

    def _commit(
        self,
        begin: m.BeginBlock,
        events: list[m.PoolUpdateMessage],
        payloads: list[bytes] | None,
    ) -> Settled | None:
        engine = self.engine
        tip = engine.tip_block
        number = begin.block_number
        if begin.is_revert:
            if tip is not None and number != tip:
                self._lose(LossCause.REVERT_NOT_TIP, f"revert of block {number}, tip is {tip}")
                return None
            engine.revert_block(begin, events)
        else:
            if tip is not None and number <= tip:
                self._lose(LossCause.BLOCK_NOT_AFTER_TIP, f"block {number} arrived with tip {tip}")
                return None
            if tip is not None and number > tip + 1 and engine.synced:
                # (after a loss, a gap is its consequence: already counted and logged)
                engine.mark_unsynced(
                    LossCause.BLOCK_GAP, f"blocks {tip + 1}..{number - 1} never arrived"
                )
                self.metrics.count_discard(LossCause.BLOCK_GAP)
            engine.apply_block(begin, events, payloads)
            self.base_fee_per_gas = begin.base_fee_per_gas
        engine.seed_from_stream()
        if self.phase.in_reorg:
            return None
        return self._settle(number, after_reorg=False)

    # -- reorg envelope -----------------------------------------------------------------
    def _on_reorg_start(self, msg: m.ReorgStart) -> None:
        if self.phase.in_block:
            self._lose(LossCause.REORG_START_INSIDE_BLOCK, f"ReorgStart seq {msg.stream_seq}")
        elif self.phase.in_reorg:
            self._lose(LossCause.REORG_START_INSIDE_REORG, f"ReorgStart seq {msg.stream_seq}")
        self.phase = AssemblerPhase.IN_REORG

    def _on_epilogue(self, msg: m.ReorgEpilogue) -> None:
        if self.phase.in_block:
            self._lose(LossCause.EPILOGUE_INSIDE_BLOCK, f"ReorgEpilogue seq {msg.stream_seq}")
            return
        if self.phase is AssemblerPhase.SKIPPING_TO_BOUNDARY:
            self.phase = AssemblerPhase.SKIPPING_REORG  # an envelope whose start was lost
            return
        if not self.phase.in_reorg:
            # A final is the state at its envelope's tip; alone it is a framing violation.
            self._lose(LossCause.EPILOGUE_OUTSIDE_REORG, f"ReorgEpilogue seq {msg.stream_seq}")
            return
        self.engine.apply_final(msg.update)

    def _on_reorg_complete(self, msg: m.ReorgComplete) -> Settled | None:
        if self.phase.in_block:
            self._lose(LossCause.REORG_COMPLETE_INSIDE_BLOCK, f"ReorgComplete seq {msg.stream_seq}")
            return None
        if not self.phase.in_reorg:
            self.metrics.updates_ignored.labels(reason="reorg_complete_outside_reorg").inc()
            return None
        self.phase = AssemblerPhase.AT_BOUNDARY
        self.metrics.reorgs.inc()
        tip = self.engine.tip_block
        if tip != msg.final_tip_block:
            self.engine.mark_unsynced(
                LossCause.REORG_TIP_MISMATCH,
                f"ReorgComplete says tip {msg.final_tip_block}, arena is at {tip}",
            )
            self.metrics.count_discard(LossCause.REORG_TIP_MISMATCH)
        return self._settle(msg.final_tip_block, after_reorg=True)

    def _settle(self, block: int, *, after_reorg: bool) -> Settled:
        return Settled(
            block=block,
            base_fee_per_gas=self.base_fee_per_gas,
            changed=frozenset(self.engine.take_changed()),
            after_reorg=after_reorg,
            sync=self.engine.sync_state,
        )
