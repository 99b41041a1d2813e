"""The deployment's pools as a `whitelist.pools.{chain}.full` document (EXEX_WIRE.md, NATS).

Addresses are written as lower-case 0x hex. V2 pools carry `fee: 3000` (the pair's fixed
0.3%) and no `tick_spacing`; V3 pools carry both; every pool names its factory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from devchain.deploy import Deployment, Pool, Token


def _token(token: Token) -> dict[str, Any]:
    return {"address": token.address.lower(), "decimals": token.decimals, "symbol": token.symbol}


def _pool(pool: Pool, deployment: Deployment) -> dict[str, Any]:
    factory = deployment.v2_factory if pool.protocol == "v2" else deployment.v3_factory
    entry: dict[str, Any] = {
        "address": pool.address.lower(),
        "protocol": pool.protocol,
        "token0": _token(pool.token0),
        "token1": _token(pool.token1),
        "fee": pool.fee,
    }
    if pool.tick_spacing is not None:
        entry["tick_spacing"] = pool.tick_spacing
    entry["factory"] = factory.lower()
    return entry


def whitelist_document(
    deployment: Deployment, chain: str = "ethereum", snapshot_id: int = 1
) -> dict[str, Any]:
    return {
        "chain": chain,
        "snapshot_id": snapshot_id,
        "pools": [_pool(p, deployment) for p in deployment.pools],
    }


def whitelist_json(deployment: Deployment, chain: str = "ethereum", snapshot_id: int = 1) -> bytes:
    return msgspec.json.format(
        msgspec.json.encode(whitelist_document(deployment, chain, snapshot_id)), indent=2
    )


def write_whitelist(
    deployment: Deployment, path: str | Path, chain: str = "ethereum", snapshot_id: int = 1
) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(whitelist_json(deployment, chain, snapshot_id) + b"\n")
    return target
