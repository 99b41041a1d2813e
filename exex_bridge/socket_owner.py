"""Who may own the ExEx socket: refuse a path that is not a socket or has a stranger owner.

The Reth node usually runs as its own service user, so the expected owner is a set of
uids (or user names); `None` disables the check.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Iterable
from enum import Enum
from typing import Final

from exex_bridge.errors import NotASocketError, SocketOwnershipError


class SocketOwners(Enum):
    """Owner policies that are not an explicit set of users."""

    CURRENT_USER_OR_ROOT = "current user or root"


def resolve_owners(owners: Iterable[int | str]) -> frozenset[int]:
    """Uids for a mix of uids, numeric strings and user names (unknown name: ValueError)."""
    uids: set[int] = set()
    for owner in owners:
        if isinstance(owner, int):
            uids.add(owner)
        elif owner.isdigit():
            uids.add(int(owner))
        else:
            try:
                uids.add(pwd.getpwnam(owner).pw_uid)
            except KeyError:
                raise ValueError(f"unknown user {owner!r}") from None
    return frozenset(uids)


def expected_uids(
    owners: Iterable[int | str] | SocketOwners | None,
) -> frozenset[int] | None:
    """The uid set to enforce, or None for no check."""
    if owners is None:
        return None
    if isinstance(owners, SocketOwners):
        return frozenset({os.getuid(), 0})
    return resolve_owners(owners)


_KINDS: Final = (
    (stat.S_ISREG, "regular file"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def check_socket_path(path: str, expected_uids: frozenset[int] | None) -> None:
    """Refuse a path that is not a socket, or not owned by an expected uid.

    A missing path raises FileNotFoundError (the producer may not have started yet).
    """
    st = os.stat(path)
    if not stat.S_ISSOCK(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "non-socket file")
        raise NotASocketError(path, kind)
    if expected_uids is not None and st.st_uid not in expected_uids:
        raise SocketOwnershipError(path, st.st_uid, expected_uids)
