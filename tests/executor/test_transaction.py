"""Signed bytes and calldata made by hand agree with eth-account and eth_abi."""

from __future__ import annotations

from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.interface import EXECUTE_SELECTOR, decode_profit, encode_execute
from executor.keys import SigningKey
from executor.transaction import (
    UnsignedTransaction,
    next_max_fee,
    sign_transaction,
    with_margin,
)

uint256 = st.integers(0, 2**256 - 1)
secrets = st.binary(min_size=32, max_size=32).filter(
    lambda b: 0 < int.from_bytes(b, "big") < 2**256 - 2**128
)
transactions = st.builds(
    UnsignedTransaction,
    chain_id=st.integers(1, 2**32),
    nonce=st.integers(0, 2**40),
    max_priority_fee_per_gas=st.integers(0, 10**12),
    max_fee_per_gas=st.integers(0, 10**13),
    gas=st.integers(21_000, 30_000_000),
    to=st.binary(min_size=20, max_size=20),
    value=st.integers(0, 10**20),
    data=st.binary(max_size=300),
)


@settings(max_examples=60, deadline=None)
@given(transactions, secrets)
def test_signed_bytes_equal_eth_accounts(tx: UnsignedTransaction, secret: bytes) -> None:
    ours = sign_transaction(tx, SigningKey(secret))
    theirs = Account.sign_transaction(
        {
            "type": 2,
            "chainId": tx.chain_id,
            "nonce": tx.nonce,
            "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
            "maxFeePerGas": tx.max_fee_per_gas,
            "gas": tx.gas,
            "to": to_checksum_address(tx.to),
            "value": tx.value,
            "data": tx.data,
            "accessList": [],
        },
        secret,
    )
    assert ours.raw == bytes(theirs.raw_transaction)
    assert ours.tx_hash == bytes(theirs.hash)
    assert Account.recover_transaction(ours.raw).lower() == SigningKey(secret).address_hex


@given(st.binary(min_size=0, max_size=200), uint256, uint256, uint256, uint256)
def test_execute_calldata_equals_the_abi_encoding(
    path: bytes, amount: int, minimum: int, payment: int, deadline: int
) -> None:
    expected = EXECUTE_SELECTOR + encode(
        ["bytes", "uint256", "uint256", "uint256", "uint256"],
        [path, amount, minimum, payment, deadline],
    )
    assert encode_execute(path, amount, minimum, payment, deadline) == expected


@given(uint256)
def test_the_profit_decodes(profit: int) -> None:
    assert decode_profit(profit.to_bytes(32, "big")) == profit


@given(st.integers(0, 10**15), st.integers(0, 10**12))
def test_the_fee_cap_covers_the_next_base_fee(base_fee: int, tip: int) -> None:
    cap = next_max_fee(base_fee, tip)
    assert cap - tip >= base_fee * 9 / 8
    assert cap - tip <= base_fee * 9 // 8 + 1


@given(st.integers(0, 10**8), st.integers(0, 100))
def test_the_margin_never_lowers_the_estimate(gas: int, percent: int) -> None:
    assert gas * (100 + percent) <= with_margin(gas, percent) * 100
