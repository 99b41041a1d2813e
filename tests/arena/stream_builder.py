"""The producer's message sequences, built exactly as EXEX_WIRE.md "Semantics" describes.

A `ChainBlock` is what the node executed: its pool updates in tx/log order. The builder
numbers every sequenced message with one `stream_seq` counter (+1 each, from 1) and
passes each message through the real codec (`encode_message` then `decode_message`),
so a test feeds the arena what it would read off the socket.

- committed block: `BeginBlock(is_revert=False)`, one `PoolUpdate` per update in order,
  `EndBlock(num_updates)`;
- reorg / revert envelope: `ReorgStart`, the old blocks newest first as
  `BeginBlock(is_revert=True)` with their updates in reverse order (original tx/log
  indexes kept), the new blocks as committed blocks (none for a plain revert), one
  `ReorgEpilogue` per affected pool, `ReorgComplete(final_tip_block)`.

One detail EXEX_WIRE.md leaves out, from the producer's `src/main.rs` (commit 2ea87a6,
`create_pool_update`): a reverted block carries no `V2Sync` (a Sync is absolute, there is
nothing to invert), and `num_updates` counts what was sent. `v2_sync_in_reverts=True`
builds the page's literal reading instead. `producer_affected` gives the producer's
epilogue set: V2 pools with any event in a reverted block, V3/V4 pools with a reverted
swap (not pools only in new blocks, not pools whose reverted updates are mints/burns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from exex_bridge import messages as m
from exex_bridge.codec import decode_message, encode_message

M = TypeVar("M", bound=m.ControlMessage)

FRAMING_FAULTS = ("num_updates", "end_number", "update_mismatch", "missing_end")


@dataclass(frozen=True, slots=True)
class ChainUpdate:
    """One decoded log of a block, as the producer sends it (minus the block fields)."""

    pool_id: m.PoolIdentifier
    protocol: m.Protocol
    update_type: m.UpdateType
    payload: m.PoolUpdatePayload
    tx_index: int
    log_index: int


@dataclass(frozen=True, slots=True)
class ChainBlock:
    number: int
    timestamp: int
    base_fee_per_gas: int
    updates: tuple[ChainUpdate, ...]


def address(n: int) -> m.PoolAddress:
    return m.PoolAddress(value=n.to_bytes(20, "big"))


def v4_pool_id(n: int) -> m.V4PoolId:
    return m.V4PoolId(value=(0xF4 << 248 | n).to_bytes(32, "big"))


def through_wire(msg: M) -> M:
    """The message as the arena reads it: encoded by the producer's rules, then decoded."""
    decoded = decode_message(encode_message(msg))
    if decoded != msg or type(decoded) is not type(msg):
        raise AssertionError(f"codec round trip changed {msg!r} into {decoded!r}")
    return decoded


def event_of(block: ChainBlock, update: ChainUpdate, *, is_revert: bool) -> m.PoolUpdateMessage:
    return m.PoolUpdateMessage(
        pool_id=update.pool_id,
        protocol=update.protocol,
        update_type=update.update_type,
        block_number=block.number,
        block_timestamp=block.timestamp,
        tx_index=update.tx_index,
        log_index=update.log_index,
        is_revert=is_revert,
        update=update.payload,
    )


def block_events(block: ChainBlock, *, is_revert: bool = False) -> list[m.PoolUpdateMessage]:
    """The block's events as a committed block (or, reversed, a revert with V2Sync) sends them."""
    updates = reversed(block.updates) if is_revert else block.updates
    return [event_of(block, u, is_revert=is_revert) for u in updates]


def producer_affected(old_blocks: Sequence[ChainBlock]) -> set[bytes]:
    """The pool keys the producer sends finals for after reverting `old_blocks`."""
    slot0 = (m.V3Swap, m.V4Swap)
    return {
        u.pool_id.value
        for block in old_blocks
        for u in block.updates
        if u.protocol is m.Protocol.UNISWAP_V2 or isinstance(u.payload, slot0)
    }


def epilogue_range(blocks: Sequence[ChainBlock]) -> m.ReorgRange:
    if not blocks:
        return m.ReorgRange(first_block=None, last_block=None, block_count=0)
    return m.ReorgRange(
        first_block=blocks[0].number, last_block=blocks[-1].number, block_count=len(blocks)
    )


class StreamBuilder:
    """Numbers and encodes messages like the producer. Every method consumes sequence
    numbers; `skip` drops some (a gap), `restart` starts over (a restarted producer)."""

    def __init__(self, first_seq: int = 1) -> None:
        self.next_seq = first_seq

    def _take(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def skip(self, count: int = 1) -> None:
        self.next_seq += count

    def restart(self, first_seq: int = 1) -> None:
        self.next_seq = first_seq

    # -- single messages ----------------------------------------------------------------
    def begin(self, block: ChainBlock, *, is_revert: bool = False) -> m.BeginBlock:
        return through_wire(
            m.BeginBlock(
                stream_seq=self._take(),
                block_number=block.number,
                block_timestamp=block.timestamp,
                base_fee_per_gas=block.base_fee_per_gas,
                is_revert=is_revert,
            )
        )

    def update(
        self, block: ChainBlock, update: ChainUpdate, *, is_revert: bool = False
    ) -> m.PoolUpdate:
        event = event_of(block, update, is_revert=is_revert)
        return through_wire(m.PoolUpdate(stream_seq=self._take(), event=event))

    def raw_update(self, event: m.PoolUpdateMessage) -> m.PoolUpdate:
        """A PoolUpdate carrying any event, consistent with its block or not."""
        return through_wire(m.PoolUpdate(stream_seq=self._take(), event=event))

    def end(self, block_number: int, num_updates: int) -> m.EndBlock:
        return through_wire(
            m.EndBlock(stream_seq=self._take(), block_number=block_number, num_updates=num_updates)
        )

    def reorg_start(
        self, old_blocks: Sequence[ChainBlock], new_blocks: Sequence[ChainBlock]
    ) -> m.ReorgStart:
        return through_wire(
            m.ReorgStart(
                stream_seq=self._take(),
                old_range=epilogue_range(old_blocks),
                new_range=epilogue_range(new_blocks),
            )
        )

    def epilogue(
        self, final_tip_block: int, final_tip_timestamp: int, update: m.ReorgEpilogueUpdate
    ) -> m.ReorgEpilogue:
        return through_wire(
            m.ReorgEpilogue(
                stream_seq=self._take(),
                final_tip_block=final_tip_block,
                final_tip_timestamp=final_tip_timestamp,
                update=update,
            )
        )

    def reorg_complete(self, final_tip_block: int) -> m.ReorgComplete:
        return through_wire(
            m.ReorgComplete(stream_seq=self._take(), final_tip_block=final_tip_block)
        )

    # -- sequences ----------------------------------------------------------------------
    def committed(self, block: ChainBlock) -> list[m.SequencedMessage]:
        out: list[m.SequencedMessage] = [self.begin(block)]
        out.extend(self.update(block, u) for u in block.updates)
        out.append(self.end(block.number, len(block.updates)))
        return out

    def reverted(
        self, block: ChainBlock, *, v2_sync_in_reverts: bool = False
    ) -> list[m.SequencedMessage]:
        updates = [
            u
            for u in reversed(block.updates)
            if v2_sync_in_reverts or not isinstance(u.payload, m.V2Sync)
        ]
        out: list[m.SequencedMessage] = [self.begin(block, is_revert=True)]
        out.extend(self.update(block, u, is_revert=True) for u in updates)
        out.append(self.end(block.number, len(updates)))
        return out

    def malformed(
        self, block: ChainBlock, fault: str, *, at: int = 0, as_revert: bool = False
    ) -> list[m.SequencedMessage]:
        """`block` as a committed block with one framing fault, numbered without gaps:
        "num_updates" (EndBlock counts one update more), "end_number" (EndBlock names the
        next block), "update_mismatch" (update `at` names the next block, or says
        is_revert with `as_revert`), "missing_end" (no EndBlock)."""
        n = len(block.updates)
        if fault not in FRAMING_FAULTS or (fault == "update_mismatch" and n == 0):
            raise ValueError(f"cannot build fault {fault!r} into a block of {n} updates")
        out: list[m.SequencedMessage] = [self.begin(block)]
        for i, u in enumerate(block.updates):
            if fault == "update_mismatch" and i == at % n:
                event = event_of(block, u, is_revert=as_revert)
                if not as_revert:
                    event = msgspec.structs.replace(event, block_number=block.number + 1)
                out.append(self.raw_update(event))
            else:
                out.append(self.update(block, u))
        if fault != "missing_end":
            number = block.number + 1 if fault == "end_number" else block.number
            out.append(self.end(number, n + 1 if fault == "num_updates" else n))
        return out

    def reorg(
        self,
        old_blocks: Sequence[ChainBlock],
        new_blocks: Sequence[ChainBlock],
        finals: Sequence[m.ReorgEpilogueUpdate],
        *,
        final_tip_block: int,
        final_tip_timestamp: int = 0,
        v2_sync_in_reverts: bool = False,
    ) -> list[m.SequencedMessage]:
        """A whole envelope. `old_blocks` and `new_blocks` oldest first; the old ones are
        sent newest first. No new blocks makes it a plain revert."""
        out: list[m.SequencedMessage] = [self.reorg_start(old_blocks, new_blocks)]
        for block in reversed(old_blocks):
            out.extend(self.reverted(block, v2_sync_in_reverts=v2_sync_in_reverts))
        for block in new_blocks:
            out.extend(self.committed(block))
        out.extend(self.epilogue(final_tip_block, final_tip_timestamp, f) for f in finals)
        out.append(self.reorg_complete(final_tip_block))
        return out
