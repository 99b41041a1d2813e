"""The execution module's errors: one base, each subclass carrying the data that explains it."""

from __future__ import annotations


class ExecutorError(Exception):
    """Base of every error the execution module raises."""


class PathEncodingError(ExecutorError):
    """A path cannot be packed or unpacked (`position` is the hop or byte it concerns)."""

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.reason = reason
        super().__init__(f"path at {position}: {reason}")
