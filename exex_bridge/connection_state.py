"""The state of a connection to a peer (the ExEx socket, a NATS server), one vocabulary
for every client in the house."""

from __future__ import annotations

from enum import Enum


class ConnectionState(Enum):
    NOT_STARTED = "not_started"  # no attempt made yet
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # lost; the client is about to retry (or is retrying)
    BACKING_OFF = "backing_off"  # waiting out the reconnect backoff
    CLOSED = "closed"  # closed by its owner; final
