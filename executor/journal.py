"""The journal: one JSON object per line and per attempt to act on an opportunity.

Amounts are integers in the start token's smallest unit. `expected_profit` is the
profit of the exact transaction built (or sent); `realized_profit` and `gas_used` are
filled in once it is mined.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class AttemptStatus(StrEnum):
    SIMULATED = "simulated"  # built and simulated; dry run, nothing sent
    REFUSED = "refused"  # not sent: `reason` says why (revert, stale state, a cap)
    SENT = "sent"
    INCLUDED = "included"
    REVERTED = "reverted"  # mined, and the transaction reverted
    DROPPED = "dropped"
    REORGED = "reorged"


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    block: int  # the opportunity's block
    status: AttemptStatus
    reason: str = ""
    tx_hash: str | None = None
    nonce: int | None = None
    expected_profit: int | None = None
    realized_profit: int | None = None
    gas_used: int | None = None
