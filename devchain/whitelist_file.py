"""The deployment's pools as a `whitelist.pools.{chain}.full` document (EXEX_WIRE.md, NATS).

Addresses are written as lower-case 0x hex. V2 pools carry `fee: 3000` (the pair's fixed
0.3%) and no `tick_spacing`; V3 pools carry both; every pool names its factory. V4 pools
(given a `V4Deployment`) carry their `pool_id`, the PoolManager as `address` and `factory`,
and their hooks address as `additional_data.hooks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from devchain.deploy import Deployment, Pool, Token
from devchain.v4_world import V4Deployment, V4Pool


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


def v4_pool_entry(pool: V4Pool, v4: V4Deployment) -> dict[str, Any]:
    manager = v4.pool_manager.lower()
    return {
        "address": manager,
        "protocol": "v4",
        "token0": _token(pool.token0),
        "token1": _token(pool.token1),
        "fee": pool.fee,
        "tick_spacing": pool.tick_spacing,
        "pool_id": "0x" + pool.pool_id.hex(),
        "factory": manager,
        "additional_data": {"hooks": pool.hooks.lower()},
    }


def whitelist_document(
    deployment: Deployment,
    chain: str = "ethereum",
    snapshot_id: int = 1,
    v4: V4Deployment | None = None,
) -> dict[str, Any]:
    pools = [_pool(p, deployment) for p in deployment.pools]
    if v4 is not None:
        pools += [v4_pool_entry(p, v4) for p in v4.pools]
    return {"chain": chain, "snapshot_id": snapshot_id, "pools": pools}


def whitelist_json(
    deployment: Deployment,
    chain: str = "ethereum",
    snapshot_id: int = 1,
    v4: V4Deployment | None = None,
) -> bytes:
    return msgspec.json.format(
        msgspec.json.encode(whitelist_document(deployment, chain, snapshot_id, v4)), indent=2
    )


def write_whitelist(
    deployment: Deployment,
    path: str | Path,
    chain: str = "ethereum",
    snapshot_id: int = 1,
    v4: V4Deployment | None = None,
) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(whitelist_json(deployment, chain, snapshot_id, v4) + b"\n")
    return target
