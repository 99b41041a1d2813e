"""What a channel answers when handed a signed transaction."""

from __future__ import annotations

from typing import Protocol

import msgspec

from executor.transaction import SignedTransaction


class Submission(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    channel: str  # "mempool" or "bundle"
    accepted: bool
    reason: str = ""  # why not accepted; relay errors met on the way when accepted
    first_block: int | None = None  # bundles: the target blocks, first..last
    last_block: int | None = None
    bundle_uuid: str | None = None  # the replacementUuid, to cancel it
    relays: tuple[str, ...] = ()  # the relays that accepted it


class Channel(Protocol):
    """Hands signed transactions to the network (`executor.channels.mempool`,
    `executor.channels.bundle`)."""

    name: str

    def submit(self, signed: SignedTransaction, head: int) -> Submission: ...

    def withdraw(self, submission: Submission) -> None: ...

    def close(self) -> None: ...
