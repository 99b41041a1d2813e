"""EIP-1559 transactions: fee bounds, the unsigned fields, signing to raw bytes.

The fee cap covers the next block's highest possible base fee (base fee × 9/8, the most
one block can raise it) plus the priority fee. Encoding and signing are done here (RLP
and a keccak hash signed by the key) so that an opportunity becomes signed bytes without
any RPC; `tests/executor/test_transaction.py` checks the bytes against eth-account.
"""

from __future__ import annotations

from typing import Final

import msgspec
import rlp
from eth_utils.crypto import keccak

from executor.keys import SigningKey

DYNAMIC_FEE_TYPE: Final = 2
BASE_FEE_RISE_NUMERATOR: Final = 9  # the base fee can rise by at most 1/8 per block
BASE_FEE_RISE_DENOMINATOR: Final = 8


class UnsignedTransaction(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    chain_id: int
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: bytes  # empty: contract creation
    value: int = 0
    data: bytes = b""

    def fields(self) -> list[object]:
        return [
            self.chain_id,
            self.nonce,
            self.max_priority_fee_per_gas,
            self.max_fee_per_gas,
            self.gas,
            self.to,
            self.value,
            self.data,
            [],  # access list
        ]

    def call_object(self, sender: bytes) -> dict[str, str]:
        """The JSON-RPC call object of this transaction (eth_call / eth_estimateGas)."""
        call = {
            "from": "0x" + sender.hex(),
            "data": "0x" + self.data.hex(),
            "value": hex(self.value),
            "maxFeePerGas": hex(self.max_fee_per_gas),
            "maxPriorityFeePerGas": hex(self.max_priority_fee_per_gas),
        }
        if self.to:
            call["to"] = "0x" + self.to.hex()
        if self.gas:
            call["gas"] = hex(self.gas)
        return call


class SignedTransaction(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    raw: bytes
    tx_hash: bytes
    transaction: UnsignedTransaction


def next_max_fee(base_fee_per_gas: int, priority_fee_per_gas: int) -> int:
    """The fee cap that stays valid in the next block whatever its base fee becomes."""
    rise = -(-base_fee_per_gas * BASE_FEE_RISE_NUMERATOR // BASE_FEE_RISE_DENOMINATOR)
    return rise + priority_fee_per_gas


def with_margin(gas_estimate: int, margin_percent: int) -> int:
    return gas_estimate + -(-gas_estimate * margin_percent // 100)


def sign_transaction(tx: UnsignedTransaction, key: SigningKey) -> SignedTransaction:
    prefix = bytes([DYNAMIC_FEE_TYPE])
    fields = tx.fields()
    parity, r, s = key.sign_hash(keccak(prefix + rlp.encode(fields)))
    raw = prefix + rlp.encode([*fields, parity, r, s])
    return SignedTransaction(raw=raw, tx_hash=keccak(raw), transaction=tx)
