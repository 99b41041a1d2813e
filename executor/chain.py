"""The JSON-RPC calls the executor makes, typed and checked: over one HTTP provider, or
over the pooled client (`exex_bridge.rpc.BlockingRpc`: reads ranked and retried across
endpoints, `eth_sendRawTransaction` sent once to the pinned write endpoint).

A revert (eth_call / eth_estimateGas) raises ChainRpcError with the revert data, so the
caller can name the contract's custom error.
"""

from __future__ import annotations

from typing import Any, Final, cast, final

from web3 import HTTPProvider
from web3.types import RPCEndpoint

from executor.errors import ChainRpcError
from exex_bridge.redaction import shown_url
from exex_bridge.rpc import (
    BlockingRpc,
    RpcAnswerError,
    RpcError,
    RpcUnavailableError,
    RpcWriteUnconfirmedError,
)

DEFAULT_TIMEOUT_S: Final = 30.0
# Simulations run on the latest state in the next block's context (number, timestamp):
# what a pool does can depend on them (a V3 pool writes an oracle observation only in a
# block later than its last one), and so can the gas it uses.
SIMULATION_TAG: Final = "pending"


def _int(value: object) -> int:
    return int(str(value), 16)


def _revert_data(error: object) -> bytes | None:
    if not isinstance(error, dict):
        return None
    data = error.get("data")
    if isinstance(data, dict):  # some nodes nest it
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


_WRITES: Final = frozenset({"eth_sendRawTransaction"})


@final
class ChainClient:
    def __init__(
        self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S, *, pool: BlockingRpc | None = None
    ) -> None:
        """`pool` given: every call goes through it (`url` then only names the node)."""
        self.url = url
        self._provider = HTTPProvider(url, request_kwargs={"timeout": timeout_s})
        self._pool = pool

    def _pooled(
        self, pool: BlockingRpc, method: str, params: list[Any], at_writer: bool = False
    ) -> Any:
        try:
            return pool.call(method, params, write=method in _WRITES, at_writer=at_writer)
        except RpcAnswerError as exc:
            error = {"message": exc.message, "data": exc.data}
            raise ChainRpcError(method, exc.message, _revert_data(error)) from None
        except RpcWriteUnconfirmedError as exc:  # sent, no answer: the node may hold it
            reason = f"{exc.endpoint}: not confirmed ({exc.detail}); not retried"
            raise ChainRpcError(method, reason, transport=True) from None
        except RpcUnavailableError as exc:
            # a read no endpoint answered: as an unreachable node. A write refused by its
            # endpoint's open breaker was never sent: a plain refusal (the nonce is free).
            reason = f"no endpoint answered after {exc.attempts} attempt(s): {exc.detail}"
            raise ChainRpcError(method, reason, transport=method not in _WRITES) from None
        except RpcError as exc:  # names endpoints by their redacted names only
            raise ChainRpcError(method, str(exc)) from None

    def request(self, method: str, params: list[Any], *, at_writer: bool = False) -> Any:
        """`at_writer`: with a pool, a read asked of the write endpoint only."""
        if self._pool is not None:
            return self._pooled(self._pool, method, params, at_writer)
        try:
            response = self._provider.make_request(cast(RPCEndpoint, method), params)
        except (OSError, ValueError) as exc:  # requests' errors derive from OSError
            # requests' messages repeat the URL's path, which can hold an API key.
            shown = shown_url(self.url)
            raise ChainRpcError(
                method, f"{shown} unreachable ({type(exc).__name__})", transport=True
            ) from None
        error = response.get("error")
        if error is not None:
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainRpcError(method, str(message), _revert_data(error))
        return response.get("result")

    def chain_id(self) -> int:
        return _int(self.request("eth_chainId", []))

    def block_number(self) -> int:
        return _int(self.request("eth_blockNumber", []))

    def latest_header(self) -> tuple[int, int]:
        """(number, base fee per gas) of the latest block."""
        header = self.request("eth_getBlockByNumber", ["latest", False])
        return _int(header["number"]), _int(header.get("baseFeePerGas", "0x0"))

    def nonce(self, address: bytes, tag: str = "pending") -> int:
        return _int(self.request("eth_getTransactionCount", ["0x" + address.hex(), tag]))

    def balance(self, address: bytes, tag: str = "latest") -> int:
        return _int(self.request("eth_getBalance", ["0x" + address.hex(), tag]))

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """The transaction as the write endpoint's node knows it: a transaction sent there
        may not have reached the pool's other nodes yet."""
        found = self.request("eth_getTransactionByHash", [tx_hash], at_writer=True)
        return cast(dict[str, Any], found) if found is not None else None

    def code(self, address: bytes) -> bytes:
        return bytes.fromhex(str(self.request("eth_getCode", ["0x" + address.hex(), "latest"]))[2:])

    def estimate_gas(self, call: dict[str, str], tag: str = SIMULATION_TAG) -> int:
        return _int(self.request("eth_estimateGas", [call, tag]))

    def call(self, call: dict[str, str], tag: str = SIMULATION_TAG) -> bytes:
        return bytes.fromhex(str(self.request("eth_call", [call, tag]))[2:])

    def send_raw(self, raw: bytes) -> str:
        return str(self.request("eth_sendRawTransaction", ["0x" + raw.hex()]))

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        found = self.request("eth_getTransactionReceipt", [tx_hash])
        return cast(dict[str, Any], found) if found is not None else None
