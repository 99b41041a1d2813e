"""Errors of the RPC client. Each names the method and the endpoint (a redacted name)."""

from __future__ import annotations

from exex_bridge.errors import BridgeError


class RpcError(BridgeError):
    """Base of every error the RPC client raises."""


class RpcAnswerError(RpcError):
    """The node answered the call with a JSON-RPC error (a revert, a bad parameter): an
    answer, not a failure of the endpoint, so it is never retried."""

    def __init__(self, method: str, endpoint: str, code: int | None, message: str, data: object):
        self.method = method
        self.endpoint = endpoint
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"{method} on {endpoint}: error {code}: {message}")


class RpcUnavailableError(RpcError):
    """No endpoint answered a read within its attempts (or every breaker is open)."""

    def __init__(self, method: str, attempts: int, detail: str) -> None:
        self.method = method
        self.attempts = attempts
        self.detail = detail
        super().__init__(f"{method}: no endpoint answered after {attempts} attempt(s): {detail}")


class RpcWriteUnconfirmedError(RpcError):
    """A write's request failed in transport: the node may or may not have taken it.
    Writes are never retried blindly; the caller decides (look the transaction up)."""

    def __init__(self, method: str, endpoint: str, detail: str) -> None:
        self.method = method
        self.endpoint = endpoint
        self.detail = detail
        super().__init__(f"{method} on {endpoint}: not confirmed ({detail}); not retried")


class EndpointFailedError(RpcError):
    """One endpoint failed one request (transport error, timeout, HTTP status, garbage):
    counted against its breaker; the client retries reads elsewhere."""

    def __init__(self, endpoint: str, kind: str, detail: str) -> None:
        self.endpoint = endpoint
        self.kind = kind
        self.detail = detail
        super().__init__(f"{endpoint}: {kind}: {detail}")
