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


class ContractError(ExecutorError):
    """The contract cannot be called as asked (`operation` names the call)."""

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(f"{operation}: {reason}")


class SigningKeyError(ExecutorError):
    """The sending key cannot be loaded from `source` (a path or a variable name). The
    message never holds key material."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"signing key from {source}: {reason}")


class RouteError(ExecutorError):
    """An opportunity cannot be turned into hops (`pool` is the one at fault)."""

    def __init__(self, pool: str, reason: str) -> None:
        self.pool = pool
        self.reason = reason
        super().__init__(f"pool {pool}: {reason}")


class ChainRpcError(ExecutorError):
    """A JSON-RPC call failed; `revert_data` holds a revert's return data, if any;
    `transport` is true when no answer came (the node may or may not have acted)."""

    def __init__(
        self,
        method: str,
        reason: str,
        revert_data: bytes | None = None,
        *,
        transport: bool = False,
    ) -> None:
        self.method = method
        self.reason = reason
        self.revert_data = revert_data
        self.transport = transport
        super().__init__(f"{method}: {reason}")
