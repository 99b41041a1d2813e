"""Capped exponential backoff with jitter, for reconnecting clients."""

from __future__ import annotations

import random
from typing import Protocol, final


class RandomSource(Protocol):
    def random(self) -> float: ...


@final
class Backoff:
    """Capped exponential delays with subtractive jitter.

    The n-th delay is `base_n * (1 - jitter * r)`, `r` in [0, 1) from the RNG and
    `base_n = min(maximum, initial * multiplier**n)`: never above `maximum`, never below
    `(1 - jitter) * base_n`.
    """

    __slots__ = ("_attempts", "_base", "_rng", "initial", "jitter", "maximum", "multiplier")

    def __init__(
        self,
        initial: float = 0.05,
        maximum: float = 5.0,
        multiplier: float = 2.0,
        jitter: float = 0.2,
        rng: RandomSource | None = None,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        if multiplier < 1:
            raise ValueError(f"backoff multiplier must be >= 1, got {multiplier}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"backoff jitter must be within [0, 1], got {jitter}")
        self.initial = initial
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = jitter
        self._rng: RandomSource = rng if rng is not None else random.Random()
        self._base = initial
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset."""
        return self._attempts

    def next_delay(self) -> float:
        base = self._base
        self._base = min(self.maximum, base * self.multiplier)
        self._attempts += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        self._base = self.initial
        self._attempts = 0
