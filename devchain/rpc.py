"""Raw JSON-RPC helpers for the dev chain: calls, explicit mining, transactions, receipts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from web3 import Web3
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from devchain.errors import RpcError, TransactionFailedError

log = logging.getLogger(__name__)

MAX_FEE_PER_GAS: Final = 200 * 10**9
MAX_PRIORITY_FEE_PER_GAS: Final = 10**9


def rpc_call(w3: Web3, method: str, params: Sequence[Any]) -> Any:
    response = w3.provider.make_request(cast(RPCEndpoint, method), list(params))
    if "error" in response:
        raise RpcError(method, params, response["error"])
    return response.get("result")


def mine(w3: Web3, blocks: int = 1) -> int:
    """Mines `blocks` blocks with whatever the pool holds; returns the new tip number."""
    if blocks == 1:
        rpc_call(w3, "evm_mine", [])
    else:
        rpc_call(w3, "anvil_mine", [hex(blocks)])
    return block_number(w3)


def block_number(w3: Web3) -> int:
    return int(rpc_call(w3, "eth_blockNumber", []), 16)


def block_header(w3: Web3, number: int) -> dict[str, Any]:
    header = rpc_call(w3, "eth_getBlockByNumber", [hex(number), False])
    if header is None:
        raise RpcError("eth_getBlockByNumber", [number], "no such block")
    return cast(dict[str, Any], header)


@dataclass(frozen=True, kw_only=True)
class TxRequest:
    """A transaction for an unlocked dev account; the node signs it."""

    sender: str
    to: str | None
    data: bytes
    gas: int
    nonce: int | None = None
    value: int = 0
    label: str = ""

    def to_json(self) -> dict[str, str]:
        body = {
            "from": self.sender,
            "data": "0x" + self.data.hex(),
            "gas": hex(self.gas),
            "value": hex(self.value),
            "maxFeePerGas": hex(MAX_FEE_PER_GAS),
            "maxPriorityFeePerGas": hex(MAX_PRIORITY_FEE_PER_GAS),
        }
        if self.to is not None:
            body["to"] = self.to
        if self.nonce is not None:
            body["nonce"] = hex(self.nonce)
        return body


def send_transactions(w3: Web3, txs: Sequence[TxRequest]) -> list[str]:
    # One request per transaction, in order: with --order fifo the pool then executes them
    # in exactly this order (a JSON-RPC batch gives no ordering guarantee).
    return [str(rpc_call(w3, "eth_sendTransaction", [tx.to_json()])) for tx in txs]


def receipts(w3: Web3, tx_hashes: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for tx_hash in tx_hashes:
        receipt = rpc_call(w3, "eth_getTransactionReceipt", [tx_hash])
        out.append(cast(dict[str, Any], receipt) if receipt is not None else {})
    return out


def require_success(
    w3: Web3, tx_hashes: Sequence[str], labels: Sequence[str]
) -> list[dict[str, Any]]:
    mined = receipts(w3, tx_hashes)
    for tx_hash, label, receipt in zip(tx_hashes, labels, mined, strict=True):
        if receipt.get("status") != "0x1":
            raise TransactionFailedError(tx_hash, label, receipt)
    return mined


def execute_block(w3: Web3, txs: Sequence[TxRequest]) -> tuple[int, list[dict[str, Any]]]:
    """Sends `txs`, mines exactly one block holding them, and checks every receipt."""
    hashes = send_transactions(w3, txs)
    number = mine(w3)
    mined = require_success(w3, hashes, [tx.label for tx in txs])
    for receipt in mined:
        if int(receipt["blockNumber"], 16) != number:
            raise TransactionFailedError(
                receipt["transactionHash"], "not in the mined block", receipt
            )
    return number, mined


def nonce_at(w3: Web3, address: str, block: int | str = "latest") -> int:
    tag = hex(block) if isinstance(block, int) else block
    return int(rpc_call(w3, "eth_getTransactionCount", [address, tag]), 16)


def call_batch(
    w3: Web3, calls: Sequence[tuple[str, bytes]], block: int | str = "latest", chunk: int = 500
) -> list[bytes]:
    """`eth_call`s as JSON-RPC batches, all at `block`; raw return data in order."""
    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise RpcError("eth_call", [], f"{type(provider).__name__} cannot batch")
    tag = hex(block) if isinstance(block, int) else block
    out: list[bytes] = []
    for start in range(0, len(calls), chunk):
        part = calls[start : start + chunk]
        requests = [
            (cast(RPCEndpoint, "eth_call"), [{"to": to, "data": "0x" + data.hex()}, tag])
            for to, data in part
        ]
        responses = provider.make_batch_request(requests)
        if not isinstance(responses, list):
            raise RpcError("eth_call", part, responses.get("error", responses))
        for (to, data), response in zip(part, responses, strict=True):
            if "error" in response:
                raise RpcError("eth_call", [to, data.hex()], response["error"])
            out.append(bytes.fromhex(str(response["result"])[2:]))
    return out
