"""Loss limits: sending stops by itself after too many reverted transactions, or too much
gas spent, within a rolling window of blocks; it stays stopped until the process restarts.

Every mined transaction is recorded with its block, whether it reverted and the gas it
paid (gas used × effective gas price, wei); the window is the last `window_blocks` blocks
up to the newest recorded one.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import final

import msgspec

log = logging.getLogger(__name__)


class LossLimits(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    max_reverted: int  # reverted transactions tolerated in the window; one more stops
    max_gas_spent: int  # wei of gas tolerated in the window; more stops
    window_blocks: int


class MinedOutcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    block: int
    reverted: bool
    gas_paid: int  # wei


@final
class LossGuard:
    def __init__(self, limits: LossLimits) -> None:
        self.limits = limits
        self.recent: deque[MinedOutcome] = deque()
        self._reason: str | None = None
        self._lock = threading.Lock()

    def record(self, outcome: MinedOutcome) -> None:
        with self._lock:
            self.recent.append(outcome)
            newest = max(o.block for o in self.recent)
            oldest = newest - self.limits.window_blocks
            self.recent = deque(o for o in self.recent if o.block > oldest)
            reverted = sum(1 for o in self.recent if o.reverted)
            spent = sum(o.gas_paid for o in self.recent)
            window = self.limits.window_blocks
            if self._reason is None and reverted > self.limits.max_reverted:
                self._reason = (
                    f"loss limit: {reverted} reverted transactions in {window} blocks "
                    f"(limit {self.limits.max_reverted})"
                )
            elif self._reason is None and spent > self.limits.max_gas_spent:
                self._reason = (
                    f"loss limit: {spent} wei of gas spent in {window} blocks "
                    f"(limit {self.limits.max_gas_spent})"
                )
            else:
                return
        log.error("%s; nothing more is sent", self._reason)

    def tripped(self) -> str | None:
        return self._reason
