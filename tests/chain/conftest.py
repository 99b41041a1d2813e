"""Chain fixtures: one anvil node with the real Uniswap deployment for the whole session.

`devchain` deploys on a node of its own, which only the chain fixtures below touch: the
deployment then has a fresh node's addresses and blocks whatever tests ran before it
(a test that needs just some node asks for `anvil_node`, a separate session node, and may
deploy and mine there freely). `devchain` is shared and accumulates whatever the tests
do to it (traffic, reorgs); a test that needs the chain exactly as deployed asks for
`clean_devchain`, which rewinds the same node to the post-deployment snapshot
(evm_snapshot / evm_revert) first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from web3 import Web3

from devchain import AnvilNode, Deployment, deploy, rpc_call
from devchain.rpc import block_number
from devchain.v4_world import DEFAULT_V4_POOLS, HOOKED_V4_POOLS, V4Deployment, deploy_v4

ALL_V4_POOLS = DEFAULT_V4_POOLS + HOOKED_V4_POOLS


@dataclass
class DevChain:
    node: AnvilNode
    w3: Web3
    deployment: Deployment
    snapshot_id: str


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="session")
def devchain_node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture(scope="session")
def devchain(devchain_node: AnvilNode) -> DevChain:
    w3 = devchain_node.web3()
    if block_number(w3) != 0:
        raise RuntimeError("the dev chain's node was used before its deployment")
    deployment = deploy(w3)
    return DevChain(devchain_node, w3, deployment, str(rpc_call(w3, "evm_snapshot", [])))


@pytest.fixture
def clean_devchain(devchain: DevChain) -> DevChain:
    if rpc_call(devchain.w3, "evm_revert", [devchain.snapshot_id]) is not True:
        raise RuntimeError("evm_revert to the deployment snapshot failed")
    devchain.snapshot_id = str(rpc_call(devchain.w3, "evm_snapshot", []))
    return devchain


@dataclass
class V4DevChain:
    chain: DevChain
    v4: V4Deployment

    @property
    def w3(self) -> Web3:
        return self.chain.w3

    @property
    def deployment(self) -> Deployment:
        return self.chain.deployment


@pytest.fixture
def clean_v4_devchain(clean_devchain: DevChain) -> V4DevChain:
    """The clean chain plus the real PoolManager, StateView, V4 test routers and the V4
    pools (hookless ones, then the hooked and the dynamic-fee one); the next
    `clean_devchain` rewinds them away."""
    return V4DevChain(
        clean_devchain, deploy_v4(clean_devchain.w3, clean_devchain.deployment, ALL_V4_POOLS)
    )
