"""The journal: one JSON object per line and per attempt to act on an opportunity.

Amounts are integers in the start token's smallest unit. `expected_profit` is the
profit of the exact transaction built (what its simulation returned, or the
opportunity's profit when it never got that far); `realized_profit` (the start token's
transfers to and from the contract in the receipt) and `gas_used` are filled in once it
is mined. Live, each inclusion transition is one more line for the same `tx_hash`
(`sent`, `included`, `confirmed`, `reorged`, `reverted`, `dropped`); the realized profit
of an attempt is counted from its `confirmed` line only (`confirmed_profit`). No entry
ever holds key material: only the sender's address.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from pathlib import Path
from typing import IO, Self, final

import msgspec


class AttemptStatus(StrEnum):
    SIMULATED = "simulated"  # built and simulated; dry run, nothing sent
    REFUSED = "refused"  # not sent: `reason` says why (revert, stale state, a cap)
    SENT = "sent"
    INCLUDED = "included"  # mined and succeeded: `mined_block`, `tx_index`, `block_hash`
    CONFIRMED = "confirmed"  # included and `confirm_depth` blocks deep; profit counted here
    REVERTED = "reverted"  # mined, and the transaction reverted
    DROPPED = "dropped"  # sent, not mined within its blocks or the timeout
    REORGED = "reorged"  # its block left the chain; `reason` says if it was re-sent


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    block: int  # the opportunity's block
    status: AttemptStatus
    reason: str = ""
    pools: tuple[str, ...] = ()
    start_token: str | None = None
    amount_in: int | None = None
    sender: str | None = None
    tx_hash: str | None = None
    nonce: int | None = None
    expected_profit: int | None = None
    coinbase_payment: int | None = None
    gas_estimate: int | None = None
    gas_limit: int | None = None
    max_fee_per_gas: int | None = None
    mined_block: int | None = None
    realized_profit: int | None = None
    gas_used: int | None = None
    block_hash: str | None = None
    tx_index: int | None = None
    channel: str | None = None  # "mempool" or "bundle"
    bundle_uuid: str | None = None  # a bundle's replacementUuid
    target_blocks: tuple[int, int] | None = None  # a bundle's first and last block


JOURNAL_DECODER = msgspec.json.Decoder(JournalEntry)


@final
class JournalWriter:
    """Appends entries, one line each, flushed as written (a crash loses none)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = self.path.open("ab")
        self._encoder = msgspec.json.Encoder()
        self._lock = threading.Lock()
        self.written = 0

    def write(self, entry: JournalEntry) -> None:
        line = self._encoder.encode(entry) + b"\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            self.written += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def read_journal(path: str | Path) -> list[JournalEntry]:
    """Every complete line's entry. A journal read while a process appends to it may end
    inside the line being written: that tail (no newline yet) is not an entry yet."""
    data = Path(path).read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [JOURNAL_DECODER.decode(line) for line in complete.splitlines() if line]


def confirmed_profit(entries: list[JournalEntry]) -> dict[str, int]:
    """Realized profit per start token (lowercase), from the `confirmed` lines: each
    attempt's profit once, whatever reorgs its journal shows."""
    totals: dict[str, int] = {}
    seen: set[str | None] = set()
    for entry in entries:
        if entry.status is not AttemptStatus.CONFIRMED or entry.tx_hash in seen:
            continue
        seen.add(entry.tx_hash)
        token = (entry.start_token or "").lower()
        totals[token] = totals.get(token, 0) + (entry.realized_profit or 0)
    return totals
