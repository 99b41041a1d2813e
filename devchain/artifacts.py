"""ABI and bytecode of the real compiled Uniswap contracts from the npm packages.

What the installed packages hold (checked, not assumed): v2-core 1.0.1 ships `build/*.json`
(waffle format: `abi`, `bytecode` without 0x, `evm.deployedBytecode.object`); it includes
the test token `ERC20.json` (constructor `_totalSupply`, fixed `decimals = 18`, symbol
"UNI-V2"). v3-core 1.0.1 and v3-periphery 1.4.4 ship hardhat artifacts (`abi`, `bytecode`,
`deployedBytecode`, 0x-prefixed, no link references for the contracts used here). There is
no WETH9 contract (only the IWETH9 interface), no v3 TestERC20, no V2 router, and the
position descriptor needs an unlinked library, so the deployment uses ERC20 tokens for
everything, one of them playing WETH, and the zero address as token descriptor.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from devchain.anvil import repo_root
from devchain.errors import ArtifactError

NODE_MODULES_ENV_VAR: Final = "ARENA_NODE_MODULES"

ArtifactName = Literal[
    "ERC20",
    "UniswapV2Factory",
    "UniswapV2Pair",
    "UniswapV3Factory",
    "UniswapV3Pool",
    "NonfungiblePositionManager",
    "SwapRouter",
    "PoolManager",
    "PoolSwapTest",
    "PoolModifyLiquidityTest",
    "StateView",
]

_PATHS: Final[dict[str, str]] = {
    "ERC20": "@uniswap/v2-core/build/ERC20.json",
    "UniswapV2Factory": "@uniswap/v2-core/build/UniswapV2Factory.json",
    "UniswapV2Pair": "@uniswap/v2-core/build/UniswapV2Pair.json",
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/"
    "UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "NonfungiblePositionManager": "@uniswap/v3-periphery/artifacts/contracts/"
    "NonfungiblePositionManager.sol/NonfungiblePositionManager.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "PoolManager": "@uniswap/v4-core/out/PoolManager.sol/PoolManager.json",
    "PoolSwapTest": "@uniswap/v4-core/out/PoolSwapTest.sol/PoolSwapTest.json",
    "PoolModifyLiquidityTest": "@uniswap/v4-core/out/PoolModifyLiquidityTest.sol/"
    "PoolModifyLiquidityTest.json",
    "StateView": "@uniswap/v4-periphery/foundry-out/StateView.sol/StateView.json",
}


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes


def node_modules_dir() -> Path:
    env = os.environ.get(NODE_MODULES_ENV_VAR)
    return Path(env) if env else repo_root() / "node_modules"


def _hex(value: object, name: str, path: Path) -> bytes:
    if isinstance(value, dict):  # foundry layout (v4-core, v4-periphery): {"object": "0x…"}
        if value.get("linkReferences"):
            raise ArtifactError(name, path, "needs library linking")
        value = value.get("object")
    if not isinstance(value, str) or not value:
        raise ArtifactError(name, path, "missing bytecode")
    return bytes.fromhex(value.removeprefix("0x"))


@functools.cache
def load_artifact(name: ArtifactName) -> Artifact:
    path = node_modules_dir() / _PATHS[name]
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(name, path, "file missing") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(name, path, f"not JSON: {exc}") from None
    deployed = raw.get("deployedBytecode")
    if deployed is None:  # waffle layout (v2-core)
        deployed = raw.get("evm", {}).get("deployedBytecode", {}).get("object")
    if raw.get("linkReferences"):
        raise ArtifactError(name, path, "needs library linking")
    return Artifact(
        name=name,
        abi=raw["abi"],
        bytecode=_hex(raw.get("bytecode"), name, path),
        deployed_bytecode=_hex(deployed, name, path),
    )


def abi_of(name: ArtifactName) -> list[dict[str, Any]]:
    return load_artifact(name).abi
