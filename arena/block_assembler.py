"""Turns the message stream into whole blocks and reorg envelopes for the engine.

Checks `stream_seq` continuity (a gap or a producer restart means lost messages; a
duplicate is dropped), block framing (`BeginBlock` … `PoolUpdate`* … `EndBlock` with
matching block number and `num_updates`) and the reorg envelope. A block reaches the
engine only after its `EndBlock` validates. Anything lost discards the open block,
marks the engine unsynced, and skips to the next block boundary.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Final, NamedTuple, final

from arena.engine import ArenaEngine
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
    trustworthy: bool


class _OpenBlock(NamedTuple):
    begin: m.BeginBlock
    events: list[m.PoolUpdateMessage]


@final
class BlockAssembler:
    def __init__(self, engine: ArenaEngine) -> None:
        self.engine = engine
        self.metrics = engine.metrics
        self.last_seq: int | None = None
        self._recent: dict[int, m.SequencedMessage] = {}
        self._recent_order: deque[int] = deque()
        self.open_block: _OpenBlock | None = None
        self.reorg: m.ReorgStart | None = None
        # A client sees the stream from "now": whatever precedes the first block boundary
        # belongs to state the arena takes from elsewhere (hydration, checkpoint).
        self.skipping = True
        self.base_fee_per_gas = 0

    @property
    def in_reorg(self) -> bool:
        return self.reorg is not None

    # -- input --------------------------------------------------------------------------
    def feed(self, msg: m.ControlMessage) -> Settled | None:
        match msg:
            case m.Ping() | m.Pong():
                return None
            case m.UpdateWhitelist():
                self.metrics.updates_ignored.labels(reason="whitelist_frame").inc()
                return None
        if not self._check_seq(msg):
            return None
        match msg:
            case m.BeginBlock():
                self._on_begin(msg)
            case m.PoolUpdate():
                self._on_update(msg)
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
        self._lose("decode_error", f"undecodable frame (stream_seq {stream_seq})")

    def on_connection_lost(self) -> None:
        """EOF or a dropped connection: the producer keeps no backlog for us."""
        self._lose("connection_lost", "connection to the producer lost")
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
                self._lose("producer_restart", f"stream_seq went from {last} to {seq}")
                self._recent.clear()
                self._recent_order.clear()
            else:
                self.metrics.seq_gaps.inc()
                self.metrics.seq_lost_messages.inc(seq - last - 1)
                self._lose("seq_gap", f"stream_seq jumped from {last} to {seq}")
        self.last_seq = seq
        self._recent[seq] = msg
        self._recent_order.append(seq)
        if len(self._recent_order) > DUPLICATE_WINDOW:
            self._recent.pop(self._recent_order.popleft(), None)
        return True

    def _lose(self, reason: str, detail: str) -> None:
        """Discard whatever is open, mark unsynced, skip to the next block boundary."""
        if self.open_block is not None:
            log.warning(
                "block %d discarded (%s): %s",
                self.open_block.begin.block_number,
                reason,
                detail,
            )
        elif not self.skipping:
            log.warning("stream loss (%s): %s", reason, detail)
        if self.open_block is not None or not self.skipping:
            self.metrics.count_discard(reason)
        self.open_block = None
        self.reorg = None
        self.skipping = True
        self.engine.mark_unsynced(f"{reason}: {detail}")

    # -- blocks -------------------------------------------------------------------------
    def _on_begin(self, msg: m.BeginBlock) -> None:
        if self.open_block is not None:
            self._lose("begin_inside_block", f"BeginBlock {msg.block_number} inside a block")
        self.skipping = False
        self.open_block = _OpenBlock(msg, [])

    def _on_update(self, msg: m.PoolUpdate) -> None:
        block = self.open_block
        if block is None:
            if self.skipping:
                self.metrics.updates_ignored.labels(reason="skipped_to_block_boundary").inc()
            else:
                self._lose("update_outside_block", f"PoolUpdate seq {msg.stream_seq}")
            return
        event = msg.event
        if event.block_number != block.begin.block_number or (
            event.is_revert != block.begin.is_revert
        ):
            self._lose(
                "update_block_mismatch",
                f"update for block {event.block_number} (revert={event.is_revert}) inside "
                f"block {block.begin.block_number} (revert={block.begin.is_revert})",
            )
            return
        block.events.append(event)

    def _on_end(self, msg: m.EndBlock) -> Settled | None:
        block = self.open_block
        if block is None:
            if not self.skipping:
                self._lose("end_without_begin", f"EndBlock {msg.block_number}")
            return None
        begin = block.begin
        if msg.block_number != begin.block_number:
            self._lose(
                "end_block_mismatch",
                f"EndBlock {msg.block_number} closes block {begin.block_number}",
            )
            return None
        if msg.num_updates != len(block.events):
            self._lose(
                "num_updates_mismatch",
                f"EndBlock says {msg.num_updates} updates, {len(block.events)} received",
            )
            return None
        self.open_block = None
        return self._commit(begin, block.events)

    def _commit(self, begin: m.BeginBlock, events: list[m.PoolUpdateMessage]) -> Settled | None:
        engine = self.engine
        tip = engine.tip_block
        number = begin.block_number
        if begin.is_revert:
            if tip is not None and number != tip:
                self._lose("revert_not_tip", f"revert of block {number}, tip is {tip}")
                return None
            engine.revert_block(begin, events)
        else:
            if tip is not None and number <= tip:
                self._lose("block_not_after_tip", f"block {number} arrived with tip {tip}")
                return None
            if tip is not None and number > tip + 1:
                engine.mark_unsynced(f"blocks {tip + 1}..{number - 1} never arrived")
                self.metrics.count_discard("block_gap")
            engine.apply_block(begin, events)
            self.base_fee_per_gas = begin.base_fee_per_gas
        if self.reorg is not None:
            return None
        return self._settle(number, after_reorg=False)

    # -- reorg envelope -----------------------------------------------------------------
    def _on_reorg_start(self, msg: m.ReorgStart) -> None:
        if self.open_block is not None:
            self._lose("reorg_start_inside_block", f"ReorgStart seq {msg.stream_seq}")
        elif self.reorg is not None:
            self._lose("reorg_start_inside_reorg", f"ReorgStart seq {msg.stream_seq}")
        self.skipping = False
        self.reorg = msg

    def _on_epilogue(self, msg: m.ReorgEpilogue) -> None:
        if self.open_block is not None:
            self._lose("epilogue_inside_block", f"ReorgEpilogue seq {msg.stream_seq}")
            return
        if self.reorg is None:
            # A final is the state at its envelope's tip; alone it is a framing violation.
            self._lose("epilogue_outside_reorg", f"ReorgEpilogue seq {msg.stream_seq}")
            return
        self.engine.apply_final(msg.update)

    def _on_reorg_complete(self, msg: m.ReorgComplete) -> Settled | None:
        if self.open_block is not None:
            self._lose("reorg_complete_inside_block", f"ReorgComplete seq {msg.stream_seq}")
            return None
        if self.reorg is None:
            self.metrics.updates_ignored.labels(reason="reorg_complete_outside_reorg").inc()
            return None
        self.reorg = None
        self.metrics.reorgs.inc()
        tip = self.engine.tip_block
        if tip != msg.final_tip_block:
            self.engine.mark_unsynced(
                f"ReorgComplete says tip {msg.final_tip_block}, arena is at {tip}"
            )
            self.metrics.count_discard("reorg_tip_mismatch")
        return self._settle(msg.final_tip_block, after_reorg=True)

    def _settle(self, block: int, *, after_reorg: bool) -> Settled:
        return Settled(
            block=block,
            base_fee_per_gas=self.base_fee_per_gas,
            changed=frozenset(self.engine.take_changed()),
            after_reorg=after_reorg,
            trustworthy=self.engine.synced,
        )
