"""The executor on the dev chain: a funded sending key, the deployed contract, the test
contracts (wrapped native token, callback probe), and fresh opportunities from an arena
hydrated over RPC at the tip.

Sending waits for a receipt, so the node must mine it: `automine` turns anvil's
automatic mining on for the duration of a block (the dev chain otherwise mines only on
demand, which the traffic generator relies on).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Final

from web3 import Web3

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.resync import resync
from arena.sync_state import SyncState
from devchain.rpc import rpc_call
from devchain.solidity import load_devchain_artifact
from executor.chain import ChainClient
from executor.deployment import deploy_executor, send_and_wait
from executor.keys import SigningKey
from exex_bridge.whitelist import WhitelistedPool
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator, Sink

ETHER: Final = 10**18
FUNDING: Final = 1_000 * ETHER


def new_funded_key(w3: Web3, funding: int = FUNDING) -> tuple[SigningKey, bytes]:
    """A fresh random key with `funding` wei (anvil_setBalance); (key, its secret) — the
    secret is returned so tests can write key files and look for leaks."""
    secret = os.urandom(32)
    key = SigningKey(secret)
    rpc_call(w3, "anvil_setBalance", [key.address_hex, hex(funding)])
    return key, secret


@contextlib.contextmanager
def automine(w3: Web3) -> Iterator[None]:
    rpc_call(w3, "evm_setAutomine", [True])
    try:
        yield
    finally:
        rpc_call(w3, "evm_setAutomine", [False])


def deploy_executor_contract(
    w3: Web3, url: str, key: SigningKey, wrapped_native: bytes = b"\x00" * 20
) -> str:
    with automine(w3):
        address = deploy_executor(ChainClient(url), key, wrapped_native)
    return Web3.to_checksum_address(address)


def deploy_test_contract(w3: Web3, url: str, key: SigningKey, name: str) -> str:
    """One of devchain/contracts (no constructor arguments), deployed by `key`."""
    code = bytes.fromhex(str(load_devchain_artifact(name)["bytecode"])[2:])
    with automine(w3):
        receipt = send_and_wait(ChainClient(url), key, b"", code)
    return Web3.to_checksum_address(str(receipt["contractAddress"]))


def send_from(w3: Web3, url: str, key: SigningKey, to: str, data: bytes) -> dict[str, object]:
    with automine(w3):
        return send_and_wait(ChainClient(url), key, bytes.fromhex(to[2:]), data)


def arena_opportunities(
    w3: Web3,
    pools: Sequence[WhitelistedPool],
    block: int | None = None,
    config: PathfinderConfig | None = None,
    sinks: Sequence[Sink] = (),
) -> list[Opportunity]:
    """The pathfinder's opportunities over an arena hydrated from the node at `block`
    (also handed to `sinks`, as `arena run` hands them)."""
    at = int(w3.eth.block_number) if block is None else block
    engine = ArenaEngine(capacity=max(16, 2 * len(pools)))
    engine.add_pools(pools)
    resync(engine, w3, at)
    base_fee = int(w3.eth.get_block(at).get("baseFeePerGas", 0))
    recalculator = PathRecalculator(engine, config or PathfinderConfig(top_k=64), sinks)
    everything = frozenset(range(len(engine.registry)))
    return recalculator.on_settled(
        Settled(
            block=at,
            base_fee_per_gas=base_fee,
            changed=everything,
            after_reorg=False,
            sync=SyncState.SYNCED,
        )
    )
