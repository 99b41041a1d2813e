"""A real Curve StableSwap-NG plain pool on the dev chain, from its compiled artifact.

`devchain/contracts/curve/*.json` hold the ABI and creation bytecode of curvefi's
`CurveStableSwapNG.vy` and its mock `ERC20.vy` (repository, commit, source SHA-256 and
compiler in each file's `source` and `compiler`). `deploy_curve_pool` deploys the coins
and a pool over them (asset type 0, no oracles: a plain pool, the deployer standing in
for the factory), funds a trader and seeds liquidity; `deploy_curve_pool_of` does the
same over coins that exist already (the dev chain's tokens).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from devchain.rpc import rpc_call

ARTIFACTS: Final = Path(__file__).resolve().parent / "contracts" / "curve"
MA_EXP_TIME: Final = 866  # the factory's default moving-average time
_ZERO: Final = "0x" + "00" * 20
_GAS: Final = 15_000_000


def curve_artifact(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.json").read_text())
    return document


@dataclass(frozen=True)
class CurvePool:
    pool: Contract
    coins: tuple[Contract, ...]
    decimals: tuple[int, ...]

    @property
    def address(self) -> str:
        return str(self.pool.address)


def _deploy(w3: Web3, name: str, sender: str, *args: object) -> Contract:
    artifact = curve_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = mine(w3, factory.constructor(*args).transact({"from": sender, "gas": _GAS}))
    if receipt["status"] != 1:
        raise RuntimeError(f"deploying {name} reverted")
    deployed = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    return cast(Contract, deployed)


def deploy_curve_pool(
    w3: Web3,
    sender: str,
    *,
    decimals: tuple[int, ...],
    amp: int,
    fee: int,
    offpeg_fee_multiplier: int,
    liquidity: tuple[int, ...],
    rates: tuple[int, ...] | None = None,
) -> CurvePool:
    """A pool of fresh coins with these decimals; `liquidity` (native units) is added
    by `sender`, who also holds 10**12 whole coins of each to trade with. `rates`
    defaults to the plain ones, 10**(36 - decimals)."""
    coins = tuple(
        _deploy(w3, "CurveMockERC20", sender, f"Coin{k}", f"C{k}", d)
        for k, d in enumerate(decimals)
    )
    for coin, d in zip(coins, decimals, strict=True):
        _wait(
            w3, coin.functions._mint_for_testing(sender, 10 ** (12 + d)).transact({"from": sender})
        )
    return deploy_curve_pool_of(
        w3,
        sender,
        coins=tuple(str(c.address) for c in coins),
        decimals=decimals,
        amp=amp,
        fee=fee,
        offpeg_fee_multiplier=offpeg_fee_multiplier,
        liquidity=liquidity,
        rates=rates,
    )


def deploy_curve_pool_of(
    w3: Web3,
    sender: str,
    *,
    coins: tuple[str, ...],
    decimals: tuple[int, ...],
    amp: int,
    fee: int,
    offpeg_fee_multiplier: int,
    liquidity: tuple[int, ...],
    rates: tuple[int, ...] | None = None,
) -> CurvePool:
    """A pool over existing ERC-20 `coins` (with these decimals); `sender` holds them,
    approves the pool and adds `liquidity` (native units)."""
    artifact = curve_artifact("CurveMockERC20")
    tokens = tuple(
        w3.eth.contract(address=Web3.to_checksum_address(c), abi=artifact["abi"]) for c in coins
    )
    n = len(tokens)
    pool = _deploy(
        w3,
        "CurveStableSwapNG",
        sender,
        "Arena test pool",
        "ATP",
        amp,
        fee,
        offpeg_fee_multiplier,
        MA_EXP_TIME,
        [t.address for t in tokens],
        list(rates or tuple(10 ** (36 - d) for d in decimals)),
        [0] * n,
        [b"\x00" * 4] * n,
        [_ZERO] * n,
    )
    for token in tokens:
        _wait(w3, token.functions.approve(pool.address, 2**256 - 1).transact({"from": sender}))
    if any(liquidity):
        add = pool.functions.add_liquidity(list(liquidity), 0)
        _wait(w3, add.transact({"from": sender, "gas": _GAS}))
    return CurvePool(pool=pool, coins=tokens, decimals=decimals)


def mine(w3: Web3, tx: bytes) -> TxReceipt:
    """Mine a block holding the sent `tx` (the dev chain mines on demand); its receipt."""
    rpc_call(w3, "evm_mine", [])
    return w3.eth.wait_for_transaction_receipt(HexBytes(tx), timeout=60)


def _wait(w3: Web3, tx: bytes) -> None:
    receipt = mine(w3, tx)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx.hex()} reverted")
