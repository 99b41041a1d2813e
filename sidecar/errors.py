"""Errors of the composition root: each says which input was wrong and where."""

from __future__ import annotations

from pathlib import Path


class SidecarError(Exception):
    """Base of the errors the `arena` command reports as one line, exit status 2."""


class ConfigError(SidecarError):
    """A setting that cannot be used. `source` is where it came from (a file, a flag,
    an environment variable), `key` the setting (`[engine] ring_depth`), if known."""

    def __init__(self, source: str, key: str | None, reason: str) -> None:
        self.source, self.key, self.reason = source, key, reason
        where = source if key is None else f"{source}: {key}"
        super().__init__(f"{where}: {reason}")


class DirectoryError(SidecarError):
    """A directory the settings name cannot be created or is not a directory."""

    def __init__(self, path: Path, role: str, reason: str) -> None:
        self.path, self.role, self.reason = path, role, reason
        super().__init__(f"cannot create the {role} directory {path}: {reason}")
