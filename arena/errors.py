"""Errors of the arena. Each carries the data its log line and metric need."""

from __future__ import annotations


class ArenaError(Exception):
    """Base of every error raised by `arena`."""


class SpillError(ArenaError):
    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"spill {path}: {reason}")


class CheckpointError(ArenaError):
    def __init__(self, path: str, reason: str, block: int | None = None) -> None:
        self.path, self.reason, self.block = path, reason, block
        at = f" (block {block})" if block is not None else ""
        super().__init__(f"checkpoint {path}{at}: {reason}")


class TickMapError(ArenaError):
    """A mint/burn that the pool's tick map cannot absorb: the map had diverged."""

    def __init__(self, pool_index: int, tick: int, reason: str) -> None:
        self.pool_index, self.tick, self.reason = pool_index, tick, reason
        super().__init__(f"pool #{pool_index} tick {tick}: {reason}")


class StateUnavailableError(ArenaError):
    """`state_at` for a block outside the window the ring and the spill still cover."""

    def __init__(self, block: int, oldest: int | None, tip: int | None) -> None:
        self.block, self.oldest, self.tip = block, oldest, tip
        super().__init__(f"state at block {block} is not available (answerable: {oldest}..{tip})")


class UnknownPoolError(ArenaError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"pool {key} is not in the whitelist")
