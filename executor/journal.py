"""The journal: one JSON object per line and per attempt to act on an opportunity.

Amounts are integers in the start token's smallest unit. `expected_profit` is the
profit of the exact transaction built (what its simulation returned, or the
opportunity's profit when it never got that far); `realized_profit` (the start token's
transfers to and from the contract in the receipt) and `gas_used` are filled in once it
is mined. No entry ever holds key material: only the sender's address.
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
    INCLUDED = "included"
    REVERTED = "reverted"  # mined, and the transaction reverted
    DROPPED = "dropped"  # sent, no receipt within the timeout
    REORGED = "reorged"


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
    return [JOURNAL_DECODER.decode(line) for line in Path(path).read_bytes().splitlines() if line]
