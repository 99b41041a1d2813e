"""What a mined transaction did: the start token's transfers to and from the contract."""

from __future__ import annotations

import threading
import time
from typing import Any, Final

from eth_utils.crypto import keccak

from executor.chain import ChainClient

TRANSFER_TOPIC: Final = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def _topic_address(topic: str) -> str:
    return "0x" + topic[-40:].lower()


def realized_profit(receipt: dict[str, Any], token: str, holder: str) -> int:
    """Sum of `token` transferred to `holder` minus sum transferred from it."""
    token, holder = token.lower(), holder.lower()
    total = 0
    for log in receipt.get("logs", []):
        topics = log.get("topics", [])
        if str(log.get("address", "")).lower() != token or len(topics) != 3:
            continue
        if topics[0] != TRANSFER_TOPIC:
            continue
        amount = int(str(log["data"]), 16)
        if _topic_address(topics[2]) == holder:
            total += amount
        if _topic_address(topics[1]) == holder:
            total -= amount
    return total


def wait_for_receipt(
    chain: ChainClient,
    tx_hash: str,
    timeout_s: float,
    poll_s: float,
    stop: threading.Event | None = None,
) -> dict[str, Any] | None:
    """The receipt, or None when the timeout passes (or `stop` is set) first."""
    deadline = time.monotonic() + timeout_s
    waiter = stop or threading.Event()
    while True:
        receipt = chain.receipt(tx_hash)
        if receipt is not None:
            return receipt
        left = deadline - time.monotonic()
        if left <= 0 or waiter.wait(min(poll_s, left)):
            return None
