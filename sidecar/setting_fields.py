"""How a settings field is declared: its `Setting` (kind, flag, help, the commands that
read it, its environment variable) kept in the dataclass field's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, final

from sidecar import setting_values as v

RUN: Final = "run"
REPLAY: Final = "replay"
RECORD: Final = "record"
EXECUTE: Final = "execute"
RELAY: Final = "relay"
GLOBAL: Final = "arena"  # a flag of the `arena` command itself, before the subcommand


@final
@dataclass(frozen=True, slots=True)
class Setting:
    """How one field is given. `commands` are the subcommands that read it."""

    kind: v.Kind[Any]
    flag: str
    help: str
    commands: frozenset[str]
    metavar: str | None = None
    env: str | None = None


def setting(
    default: Any,
    kind: v.Kind[Any],
    flag: str,
    help: str,
    *commands: str,
    metavar: str | None = None,
    env: str | None = None,
) -> Any:
    meta = {"setting": Setting(kind, flag, help, frozenset(commands), metavar, env)}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


def setting_of(f: Any) -> Setting:
    found: Setting = f.metadata["setting"]
    return found
