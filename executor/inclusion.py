"""Inclusion tracking, the pure part: what a sent transaction's state becomes when the
node says where it is now.

    sent ──► included(block, index) ──► confirmed (depth reached; profit counted here, once)
     │  │          │
     │  └► reverted (mined, status 0)      └──► reorged (its block left the canonical chain)
     └──► dropped (not mined within its blocks)      │
                                          reorged ──► sent (re-simulated, then re-broadcast)
                                                  ──► included / reverted / dropped

Terminal: confirmed, reverted, dropped. A tracked transaction is in exactly one state;
it moves only along the edges above (`EDGES`); realized profit is counted only on
entering `confirmed`, which is terminal, so at most once whatever the reorgs.

What each outcome means for the sending key's nonce lane is `executor.nonce_outcomes`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, final

import msgspec


class InclusionState(StrEnum):
    SENT = "sent"
    INCLUDED = "included"
    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    DROPPED = "dropped"
    REORGED = "reorged"


TERMINAL: Final = frozenset(
    {InclusionState.CONFIRMED, InclusionState.REVERTED, InclusionState.DROPPED}
)
EDGES: Final[dict[InclusionState, frozenset[InclusionState]]] = {
    InclusionState.SENT: frozenset(
        {InclusionState.INCLUDED, InclusionState.REVERTED, InclusionState.DROPPED}
    ),
    InclusionState.INCLUDED: frozenset({InclusionState.CONFIRMED, InclusionState.REORGED}),
    InclusionState.REORGED: frozenset(
        {
            InclusionState.SENT,
            InclusionState.INCLUDED,
            InclusionState.REVERTED,
            InclusionState.DROPPED,
        }
    ),
    InclusionState.CONFIRMED: frozenset(),
    InclusionState.REVERTED: frozenset(),
    InclusionState.DROPPED: frozenset(),
}


class Mined(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Where the node's receipt puts the transaction now."""

    block: int
    block_hash: str
    index: int
    succeeded: bool
    realized_profit: int
    gas_used: int
    gas_price: int  # the effective gas price paid, wei


class Transition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    state: InclusionState
    reason: str = ""
    mined: Mined | None = None
    counted_profit: int | None = None  # set only on entering `confirmed`


class InclusionError(Exception):
    """A transition outside `EDGES` was asked for (a bug, never input)."""

    def __init__(self, old: InclusionState, new: InclusionState) -> None:
        self.old = old
        self.new = new
        super().__init__(f"no transition {old} -> {new}")


@final
class InclusionTrack:
    """One sent transaction's state. `observe` is fed the head and the node's answer for
    the transaction; `rebroadcast` after a reorg's re-simulation passed."""

    def __init__(self, head: int, *, confirm_depth: int, drop_after_blocks: int) -> None:
        self.state = InclusionState.SENT
        self.since = head  # the head when (re)sent: drop after drop_after_blocks more
        self.confirm_depth = confirm_depth
        self.drop_after_blocks = drop_after_blocks
        self.mined: Mined | None = None
        self.profit_counted = False

    @property
    def pending(self) -> bool:
        return self.state not in TERMINAL

    def _move(self, new: InclusionState, **fields: object) -> Transition:
        if new not in EDGES[self.state]:
            raise InclusionError(self.state, new)
        self.state = new
        return Transition(state=new, **fields)  # type: ignore[arg-type]

    def observe(self, head: int, mined: Mined | None) -> list[Transition]:
        moves = self._check_still_mined(head, mined)
        if self.state in (InclusionState.SENT, InclusionState.REORGED) and mined is not None:
            moves.append(self._mined(mined))
        included = self.mined if self.state is InclusionState.INCLUDED else None
        if included is not None and head - included.block >= self.confirm_depth:
            moves.append(self._confirm(head, included))
        if (
            self.state in (InclusionState.SENT, InclusionState.REORGED)
            and head >= self.since + self.drop_after_blocks
        ):
            reason = f"not mined within {self.drop_after_blocks} blocks after {self.since}"
            moves.append(self._move(InclusionState.DROPPED, reason=reason))
        return moves

    def _check_still_mined(self, head: int, mined: Mined | None) -> list[Transition]:
        """`reorged` when the including block is no longer where the node has it."""
        gone = self.mined if self.state is InclusionState.INCLUDED else None
        if gone is None or (mined is not None and mined.block_hash == gone.block_hash):
            return []
        self.mined = None
        self.since = head
        reason = f"block {gone.block} {gone.block_hash} left the chain"
        return [self._move(InclusionState.REORGED, reason=reason, mined=gone)]

    def _mined(self, mined: Mined) -> Transition:
        if mined.succeeded:
            self.mined = mined
            return self._move(InclusionState.INCLUDED, mined=mined)
        reason = "reverted on chain: the state moved after the simulation"
        return self._move(InclusionState.REVERTED, reason=reason, mined=mined)

    def _confirm(self, head: int, mined: Mined) -> Transition:
        moved = self._move(
            InclusionState.CONFIRMED,
            reason=f"{head - mined.block} blocks deep",
            mined=mined,
            counted_profit=None if self.profit_counted else mined.realized_profit,
        )
        self.profit_counted = True
        return moved

    def rebroadcast(self, head: int) -> Transition:
        self.since = head
        return self._move(InclusionState.SENT, reason="re-simulated after the reorg; re-sent")

    def drop(self, reason: str) -> Transition:
        return self._move(InclusionState.DROPPED, reason=reason)
