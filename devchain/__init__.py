"""A real dev chain for tests, demos and recordings: anvil with the real Uniswap contracts.

Start a node (`AnvilNode`), deploy tokens, V2 pairs and V3 pools with liquidity (`deploy`),
write their whitelist (`write_whitelist`), drive seeded traffic (`TrafficGenerator`) and
reorganise the chain (`reorg`, `rollback`, `reorg_with_traffic`, `run_scenario`).
"""

from devchain.anvil import AnvilConfig, AnvilNode, find_anvil_binary
from devchain.deploy import Deployment, Pool, Token, deploy
from devchain.errors import (
    AnvilNotFoundError,
    AnvilStartError,
    ArtifactError,
    DeploymentError,
    DevchainError,
    RpcError,
    TransactionFailedError,
)
from devchain.reorgs import (
    ReorgDepthError,
    ReorgOutcome,
    canonical_hashes,
    reorg,
    reorg_with_traffic,
    rollback,
)
from devchain.rpc import TxRequest, execute_block, mine, rpc_call
from devchain.scenario import ChainEvent, ScenarioConfig, run_scenario
from devchain.spec import DEFAULT_SPEC, DeploymentSpec, PoolSpec, TokenSpec
from devchain.traffic import BlockTraffic, TrafficConfig, TrafficGenerator
from devchain.whitelist_file import whitelist_document, write_whitelist

__all__ = [
    "DEFAULT_SPEC",
    "AnvilConfig",
    "AnvilNode",
    "AnvilNotFoundError",
    "AnvilStartError",
    "ArtifactError",
    "BlockTraffic",
    "ChainEvent",
    "Deployment",
    "DeploymentError",
    "DeploymentSpec",
    "DevchainError",
    "Pool",
    "PoolSpec",
    "ReorgDepthError",
    "ReorgOutcome",
    "RpcError",
    "ScenarioConfig",
    "Token",
    "TokenSpec",
    "TrafficConfig",
    "TrafficGenerator",
    "TransactionFailedError",
    "TxRequest",
    "canonical_hashes",
    "deploy",
    "execute_block",
    "find_anvil_binary",
    "mine",
    "reorg",
    "reorg_with_traffic",
    "rollback",
    "rpc_call",
    "run_scenario",
    "whitelist_document",
    "write_whitelist",
]
