"""Errors of the wire layer. Every error carries the data a log line or a metric needs."""

from __future__ import annotations

from collections.abc import Iterable


class BridgeError(Exception):
    """Base of every error raised by `exex_bridge`."""


class CodecError(BridgeError):
    """A frame that does not decode (or a value that cannot be encoded) exactly.

    `offset` is the byte offset inside the frame payload where decoding failed, `path`
    the variant path being read (`ControlMessage::PoolUpdate.event.update::V3Swap.tick`),
    and `stream_seq` the frame's sequence number when it was readable before the failure.
    """

    def __init__(
        self, reason: str, *, offset: int, path: str, stream_seq: int | None = None
    ) -> None:
        self.reason = reason
        self.offset = offset
        self.path = path
        self.stream_seq = stream_seq
        seq = f" (stream_seq {stream_seq})" if stream_seq is not None else ""
        super().__init__(f"{reason} at byte {offset} in {path}{seq}")


class FrameTooLargeError(BridgeError):
    """A length prefix above the configured cap: the connection must be dropped."""

    def __init__(self, length: int, cap: int) -> None:
        self.length = length
        self.cap = cap
        super().__init__(f"frame length {length} exceeds the cap of {cap} bytes")


class TruncatedStreamError(BridgeError):
    """The byte stream ended inside a frame (a recording cut short, or an EOF mid-frame)."""

    def __init__(self, offset: int, needed: int, available: int) -> None:
        self.offset = offset
        self.needed = needed
        self.available = available
        super().__init__(
            f"stream ends inside a frame at byte {offset}: {needed} bytes needed, "
            f"{available} available"
        )


class SocketOwnershipError(BridgeError):
    """The socket path is not owned by an expected user: refusing to read it."""

    def __init__(self, path: str, owner_uid: int, expected_uids: Iterable[int]) -> None:
        self.path = path
        self.owner_uid = owner_uid
        self.expected_uids = frozenset(expected_uids)
        expected = ", ".join(str(uid) for uid in sorted(self.expected_uids))
        super().__init__(
            f"socket {path} is owned by uid {owner_uid}, expected uid(s) {expected}; "
            "refusing to read it (set the expected owner with --socket-owner)"
        )


class NotASocketError(BridgeError):
    """The socket path exists but is something else (a regular file, a directory...)."""

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        self.kind = kind
        super().__init__(f"{path} exists but is a {kind}, not a Unix socket; refusing it")


class SocketUnavailableError(BridgeError):
    """No connection could be made to the socket within the allowed time."""

    def __init__(self, path: str, waited: float, reason: str) -> None:
        self.path = path
        self.waited = waited
        self.reason = reason
        super().__init__(f"could not connect to {path} within {waited:.1f} s: {reason}")


class SocketServeError(BridgeError):
    """The producer cannot listen on its socket path (a missing folder, no permission,
    a path too long for a Unix socket)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot serve the socket {path}: {reason}")


class RecordingFormatError(BridgeError):
    """A recording file whose header is unreadable or of an unknown version."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class WhitelistError(BridgeError):
    """A whitelist document that cannot be used at all (not JSON, wrong shape)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"whitelist {source}: {reason}")


class NatsUnavailableError(BridgeError):
    """No connection to the NATS server could be made (`url` is shown without credentials)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach NATS at {url}: {reason}")


class RelayStreamError(BridgeError):
    """The JetStream stream of the relayed frames is missing, misconfigured or refused."""

    def __init__(self, stream: str, reason: str) -> None:
        self.stream = stream
        self.reason = reason
        super().__init__(f"JetStream stream {stream}: {reason}")
