"""Deploying the executor contract, and sending any one-off owner transaction, with the
executor's own key: estimate, sign, send, wait for the receipt (bounded)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from executor.chain import ChainClient
from executor.errors import ContractError
from executor.interface import deployment_data
from executor.keys import SigningKey
from executor.receipts import wait_for_receipt
from executor.transaction import UnsignedTransaction, next_max_fee, sign_transaction, with_margin

DEPLOY_GAS_MARGIN_PERCENT: Final = 20
DEFAULT_PRIORITY_FEE: Final = 10**9
ZERO_ADDRESS: Final = b"\x00" * 20


def send_and_wait(
    chain: ChainClient,
    key: SigningKey,
    to: bytes,
    data: bytes,
    *,
    timeout_s: float = 120.0,
    priority_fee_per_gas: int = DEFAULT_PRIORITY_FEE,
    gas: int | None = None,
) -> dict[str, Any]:
    """Sends one transaction from `key` and returns its receipt (raises when reverted or
    not mined within `timeout_s`). `gas` None: estimated, plus a margin."""
    _, base_fee = chain.latest_header()
    tx = UnsignedTransaction(
        chain_id=chain.chain_id(),
        nonce=chain.nonce(key.address),
        max_priority_fee_per_gas=priority_fee_per_gas,
        max_fee_per_gas=next_max_fee(base_fee, priority_fee_per_gas),
        gas=gas or 0,
        to=to,
        data=data,
    )
    if gas is None:
        estimate = chain.estimate_gas(tx.call_object(key.address))
        tx = msgspec.structs.replace(tx, gas=with_margin(estimate, DEPLOY_GAS_MARGIN_PERCENT))
    signed = sign_transaction(tx, key)
    tx_hash = chain.send_raw(signed.raw)
    receipt = wait_for_receipt(chain, tx_hash, timeout_s, 0.05)
    if receipt is None:
        raise ContractError("send", f"{tx_hash} not mined within {timeout_s} s")
    if receipt.get("status") != "0x1":
        raise ContractError("send", f"{tx_hash} reverted")
    return receipt


def deploy_executor(
    chain: ChainClient, key: SigningKey, wrapped_native: bytes = ZERO_ADDRESS, **kwargs: Any
) -> bytes:
    """Deploys ArenaExecutor owned by `key`; returns its address."""
    receipt = send_and_wait(chain, key, b"", deployment_data(wrapped_native), **kwargs)
    address = receipt.get("contractAddress")
    if not address:
        raise ContractError("deploy", "the receipt names no contract address")
    return bytes.fromhex(str(address)[2:])
