"""A token bucket per RPC endpoint: at most `burst` requests at once, `rate` per second.

`reserve(now)` takes a token and says how long to wait before using it. The bucket may go
into debt (a negative balance): every caller gets its own slot in time, in call order, so
the admitted requests never exceed `burst + rate * T` over any window of T seconds.
"""

from __future__ import annotations

from typing import final


@final
class TokenBucket:
    __slots__ = ("_tokens", "_updated", "burst", "rate")

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        if rate <= 0:
            raise ValueError(f"a token bucket needs a positive rate, got {rate}")
        self.rate = rate
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            raise ValueError(f"a token bucket needs burst >= 1, got {burst}")
        self._tokens = self.burst
        self._updated = now

    def reserve(self, now: float) -> float:
        """Take one token; returns the seconds to wait before the request may go."""
        start = max(now, self._updated)
        self._tokens = min(self.burst, self._tokens + (start - self._updated) * self.rate)
        self._updated = start
        self._tokens -= 1.0
        debt = -self._tokens / self.rate if self._tokens < 0 else 0.0
        return start - now + debt
