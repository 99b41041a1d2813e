"""The executor on the session's dev chain: a funded key (written to a key file), the
deployed contract, the whitelist, and helpers to read a transaction's outcome.

Import the fixtures into a test module: `from tests.chain.executor_fixtures import
executor_world  # noqa: F401`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devchain.executor_world import automine, deploy_executor_contract, new_funded_key
from devchain.rpc import rpc_call
from devchain.v4_world import V4Deployment
from devchain.whitelist_file import write_whitelist
from executor.chain import ChainClient
from executor.errors import ChainRpcError
from executor.interface import describe_revert
from executor.keys import SigningKey
from executor.path import HopKind
from executor.receipts import wait_for_receipt
from executor.route import HopKinds
from executor.settings import ExecutorSettings
from executor.transaction import UnsignedTransaction, next_max_fee, sign_transaction
from exex_bridge.whitelist import WhitelistedPool, load_whitelist_file
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig
from tests.chain.conftest import DevChain


@dataclass
class ExecutorWorld:
    chain: DevChain
    client: ChainClient
    key: SigningKey
    secret: bytes
    key_file: Path
    executor: str
    whitelist: Path
    pools: tuple[WhitelistedPool, ...]
    kinds: HopKinds
    tmp: Path

    def settings(self, *, live: bool, journal: str = "journal.jsonl") -> ExecutorSettings:
        return ExecutorSettings(
            rpc_url=self.chain.node.url,
            executor=self.executor,
            whitelist=str(self.whitelist),
            journal=str(self.tmp / journal),
            key_file=str(self.key_file),
            live=live,
            receipt_timeout_s=30.0,
        )


def make_executor_world(
    chain: DevChain, tmp_path: Path, v4: V4Deployment | None = None
) -> ExecutorWorld:
    """A funded key, the deployed contract and the whitelist (with `v4`'s pools, if any)."""
    w3 = chain.w3
    key, secret = new_funded_key(w3)
    key_file = tmp_path / "executor.key"
    key_file.write_text(secret.hex() + "\n")
    executor = deploy_executor_contract(w3, chain.node.url, key)
    whitelist = write_whitelist(chain.deployment, tmp_path / "whitelist.json", v4=v4)
    pools = load_whitelist_file(whitelist).pools
    return ExecutorWorld(
        chain=chain,
        client=ChainClient(chain.node.url),
        key=key,
        secret=secret,
        key_file=key_file,
        executor=executor,
        whitelist=whitelist,
        pools=pools,
        kinds=HopKinds(pools),
        tmp=tmp_path,
    )


@pytest.fixture
def executor_world(clean_devchain: DevChain, tmp_path: Path) -> ExecutorWorld:
    return make_executor_world(clean_devchain, tmp_path)


def send_unchecked(
    world: ExecutorWorld, key: SigningKey, to: str, data: bytes, gas: int = 2_000_000
) -> dict[str, Any]:
    """Sign and send with a fixed gas limit — no estimate, no simulation — and return
    the receipt whatever its status."""
    client = world.client
    _, base_fee = client.latest_header()
    tx = UnsignedTransaction(
        chain_id=client.chain_id(),
        nonce=client.nonce(key.address),
        max_priority_fee_per_gas=10**9,
        max_fee_per_gas=next_max_fee(base_fee, 10**9),
        gas=gas,
        to=bytes.fromhex(to[2:]),
        data=data,
    )
    with automine(world.chain.w3):
        tx_hash = client.send_raw(sign_transaction(tx, key).raw)
        receipt = wait_for_receipt(client, tx_hash, 30.0, 0.05)
    assert receipt is not None
    return receipt


def onchain_revert(world: ExecutorWorld, tx_hash: str) -> str:
    """The mined transaction's revert, decoded (from the node's call trace)."""
    trace = rpc_call(world.chain.w3, "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    output = str(trace.get("output", "0x"))
    return describe_revert(bytes.fromhex(output[2:]))


def call_revert(world: ExecutorWorld, sender: bytes, to: str, data: bytes) -> str:
    """What an eth_call of `data` from `sender` reverts with (fails if it does not)."""
    call = {"from": "0x" + sender.hex(), "to": to, "data": "0x" + data.hex()}
    try:
        world.client.call(call)
    except ChainRpcError as exc:
        assert exc.revert_data is not None, exc
        return describe_revert(exc.revert_data)
    raise AssertionError(f"call to {to} did not revert")


def expected_gas_units(kinds: HopKinds, opportunity: Opportunity) -> int:
    """The pathfinder's gas units for the cycle: the base and each hop's kind's estimate."""
    config = PathfinderConfig()
    per_hop = {
        HopKind.UNISWAP_V2: config.gas_per_v2_hop,
        HopKind.UNISWAP_V3: config.gas_per_v3_hop,
        HopKind.UNISWAP_V4: config.gas_per_v4_hop,
        HopKind.CURVE_STABLE: config.gas_per_curve_hop,
        HopKind.BALANCER_V2: config.gas_per_balancer_hop,
    }
    return config.gas_base + sum(per_hop[kinds.kind(p)] for p in opportunity.pools)
