"""The owner check the socket settings ask `SocketSource` for."""

from __future__ import annotations

from exex_bridge.socket_owner import SocketOwners
from sidecar.setting_values import ANY_OWNER
from sidecar.settings import SocketSettings


def expected_owners(socket: SocketSettings) -> list[int] | SocketOwners | None:
    """No owner given: you or root; `any` among them: no check; else those uids."""
    if not socket.owners:
        return SocketOwners.CURRENT_USER_OR_ROOT
    if ANY_OWNER in socket.owners:
        return None
    return [uid for uid in socket.owners if isinstance(uid, int)]
