"""The coinbase payment: with the wrapped native token as start token, the contract
unwraps the payment and pays the block's coinbase last; the profit guard counts it."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from devchain.abi import call
from devchain.executor_world import (
    arena_opportunities,
    automine,
    deploy_executor_contract,
    new_funded_key,
)
from devchain.rpc import rpc_call
from devchain.whitelist_file import write_whitelist
from devchain.wrapped_native import add_wrapped_native_pairs
from executor.chain import ChainClient
from executor.journal import AttemptStatus, read_journal
from executor.session import OpportunityExecutor
from executor.settings import ExecutorSettings
from exex_bridge.whitelist import load_whitelist_file
from pathfinder.recalculator import PathfinderConfig
from tests.chain.conftest import DevChain

pytestmark = pytest.mark.chain

SHARE_BPS: Final = 2_500
COINBASE: Final = "0x" + "c0" * 20


def test_the_coinbase_is_paid_its_share_in_native_currency(
    clean_devchain: DevChain, tmp_path: Path
) -> None:
    w3 = clean_devchain.w3
    deployment, wrapped = add_wrapped_native_pairs(w3, clean_devchain.deployment)
    whitelist = write_whitelist(deployment, tmp_path / "w.json")
    pools = load_whitelist_file(whitelist).pools
    key, secret = new_funded_key(w3)
    (tmp_path / "k").write_text(secret.hex())
    wrapped_bytes = bytes.fromhex(wrapped.address[2:])
    executor = deploy_executor_contract(w3, clean_devchain.node.url, key, wrapped_bytes)
    config = PathfinderConfig(base_tokens=(wrapped_bytes,), top_k=16)
    found = [
        o
        for o in arena_opportunities(w3, pools, config=config)
        if o.tokens[0].lower() == wrapped.address.lower()
    ]
    assert found, "TWETH is mispriced against USDC: there is a cycle"
    settings = ExecutorSettings(
        rpc_url=clean_devchain.node.url,
        executor=executor,
        whitelist=str(whitelist),
        journal=str(tmp_path / "j.jsonl"),
        key_file=str(tmp_path / "k"),
        live=True,
        coinbase_share_bps=SHARE_BPS,
        wrapped_native=wrapped.address,
        receipt_timeout_s=30,
    )
    original = str(rpc_call(w3, "eth_coinbase", []))
    rpc_call(w3, "anvil_setCoinbase", [COINBASE])
    before = w3.eth.get_balance(w3.to_checksum_address(COINBASE))
    runner = OpportunityExecutor.open(settings)
    try:
        with automine(w3):
            runner(found[:1])
    finally:
        runner.close()
        rpc_call(w3, "anvil_setCoinbase", [original])
    (sent, included) = read_journal(tmp_path / "j.jsonl")
    assert sent.status is AttemptStatus.SENT and included.status is AttemptStatus.INCLUDED
    profit = found[0].profit
    payment = profit * SHARE_BPS // 10_000
    assert included.coinbase_payment == payment > 0
    assert included.realized_profit == included.expected_profit == profit
    receipt = ChainClient(clean_devchain.node.url).receipt(str(included.tx_hash))  # closed pool
    assert receipt is not None
    tip = int(receipt["effectiveGasPrice"], 16) - int(
        w3.eth.get_block(int(receipt["blockNumber"], 16))["baseFeePerGas"]
    )
    received = w3.eth.get_balance(w3.to_checksum_address(COINBASE)) - before
    assert received == payment + tip * int(receipt["gasUsed"], 16)
    held = call(w3, wrapped.address, "ERC20", "balanceOf", executor)[0]
    assert held == profit - payment
    assert w3.eth.get_balance(w3.to_checksum_address(executor)) == 0
