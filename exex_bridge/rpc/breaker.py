"""A circuit breaker per RPC endpoint: stop sending to a node that keeps failing.

CLOSED counts consecutive failures; at `failure_threshold` it opens. OPEN refuses every
request for `cooldown_s`, then HALF_OPEN lets one probe through: its success closes the
breaker, its failure opens it for another cool-down. Time comes from the caller, so the
breaker is a pure state machine (tests drive it with any clock).
"""

from __future__ import annotations

from enum import Enum
from typing import final


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@final
class CircuitBreaker:
    __slots__ = ("_failures", "_half_open_at", "_probing", "cooldown_s", "failure_threshold")

    def __init__(self, failure_threshold: int = 5, cooldown_s: float = 30.0) -> None:
        if failure_threshold < 1 or cooldown_s <= 0:
            raise ValueError("a breaker needs failure_threshold >= 1 and cooldown_s > 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._failures = 0
        self._half_open_at: float | None = None
        self._probing = False

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def state(self, now: float) -> BreakerState:
        if self._half_open_at is None:
            return BreakerState.CLOSED
        if now >= self._half_open_at:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def available(self, now: float) -> bool:
        """Whether a request could be admitted now (without admitting it)."""
        state = self.state(now)
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self._probing
        )

    def admit(self, now: float) -> bool:
        """Admit one request; in HALF_OPEN only one probe at a time."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._half_open_at = None
        self._probing = False

    def abandon(self) -> None:
        """An admitted request ended without a verdict (cancelled): free the probe."""
        self._probing = False

    def record_failure(self, now: float) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.failure_threshold:
            self._half_open_at = now + self.cooldown_s
        self._probing = False
