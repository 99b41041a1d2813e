"""The devchain's errors: one base, each subclass carrying what went wrong where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exex_bridge.errors import BridgeError


class DevchainError(BridgeError):
    """Base of every error raised by devchain."""


class AnvilNotFoundError(DevchainError):
    def __init__(self, path: Path) -> None:
        super().__init__(
            f"anvil binary not found at {path}: run `bash scripts/test.sh` (it runs `npm ci`) "
            "or point ARENA_ANVIL at an anvil 1.7.x binary"
        )
        self.path = path


class AnvilStartError(DevchainError):
    def __init__(self, reason: str, output_tail: list[str]) -> None:
        tail = "\n".join(output_tail[-10:])
        super().__init__(f"{reason}; last anvil output:\n{tail}")
        self.reason = reason
        self.output_tail = list(output_tail)


class ArtifactError(DevchainError):
    def __init__(self, name: str, path: Path, reason: str) -> None:
        super().__init__(
            f"artifact {name} at {path}: {reason} (run `bash scripts/test.sh` to install "
            "the npm packages)"
        )
        self.name = name
        self.path = path


class RpcError(DevchainError):
    def __init__(self, method: str, params: Any, error: Any) -> None:
        super().__init__(f"{method} failed: {error}")
        self.method = method
        self.params = params
        self.error = error


class TransactionFailedError(DevchainError):
    def __init__(self, tx_hash: str, label: str, receipt: Any) -> None:
        super().__init__(f"transaction {label} ({tx_hash}) reverted or was not mined")
        self.tx_hash = tx_hash
        self.label = label
        self.receipt = receipt


class DeploymentError(DevchainError):
    def __init__(self, what: str) -> None:
        super().__init__(f"deployment failed: {what}")
        self.what = what
