"""What the traffic generator knows about the chain at one block, read in batched calls.

The generator builds exact transactions from it (router-less V2 swaps need the reserves
at execution time) and updates it locally while it builds a block, so that several
transactions on the same pool inside one block stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from web3 import Web3

from devchain.abi import decode_result, encode_call
from devchain.deploy import Deployment, Pool
from devchain.rpc import call_batch, nonce_at


@dataclass
class V2PairView:
    pool: Pool
    reserve0: int
    reserve1: int
    total_supply: int
    trader_liquidity: int


@dataclass
class V3PoolView:
    pool: Pool
    sqrt_price_x96: int
    tick: int
    balance0: int
    balance1: int


@dataclass
class PositionView:
    token_id: int
    pool: Pool
    tick_lower: int
    tick_upper: int
    liquidity: int


@dataclass
class ChainView:
    block: int
    nonce: int
    next_token_id: int
    v2: dict[str, V2PairView]
    v3: dict[str, V3PoolView]
    positions: list[PositionView]
    # Pools whose price this view may no longer know exactly (swapped since loading).
    moved: set[str] = field(default_factory=set)
    # Positions already decreased since loading (one decrease each keeps amounts valid).
    spent: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, w3: Web3, deployment: Deployment, block: int) -> ChainView:
        v2_pools, v3_pools = deployment.pools_of("v2"), deployment.pools_of("v3")
        npm, trader = deployment.position_manager, deployment.trader
        calls: list[tuple[str, bytes]] = []
        for p in v2_pools:
            calls += [
                (p.address, encode_call("UniswapV2Pair", "getReserves")),
                (p.address, encode_call("UniswapV2Pair", "totalSupply")),
                (p.address, encode_call("UniswapV2Pair", "balanceOf", trader)),
            ]
        for p in v3_pools:
            calls += [
                (p.address, encode_call("UniswapV3Pool", "slot0")),
                (p.token0.address, encode_call("ERC20", "balanceOf", p.address)),
                (p.token1.address, encode_call("ERC20", "balanceOf", p.address)),
            ]
        calls += [
            (npm, encode_call("NonfungiblePositionManager", "totalSupply")),
            (npm, encode_call("NonfungiblePositionManager", "balanceOf", trader)),
        ]
        results = iter(call_batch(w3, calls, block))
        v2 = {}
        for p in v2_pools:
            r0, r1, _ = decode_result("UniswapV2Pair", "getReserves", next(results))
            (supply,) = decode_result("UniswapV2Pair", "totalSupply", next(results))
            (mine,) = decode_result("UniswapV2Pair", "balanceOf", next(results))
            v2[p.address] = V2PairView(p, r0, r1, supply, mine)
        v3 = {}
        for p in v3_pools:
            slot0 = decode_result("UniswapV3Pool", "slot0", next(results))
            (b0,) = decode_result("ERC20", "balanceOf", next(results))
            (b1,) = decode_result("ERC20", "balanceOf", next(results))
            v3[p.address] = V3PoolView(p, slot0[0], slot0[1], b0, b1)
        (minted,) = decode_result("NonfungiblePositionManager", "totalSupply", next(results))
        (owned,) = decode_result("NonfungiblePositionManager", "balanceOf", next(results))
        positions = _positions(w3, deployment, block, owned)
        return cls(
            block=block,
            nonce=nonce_at(w3, trader, block),
            next_token_id=minted + 1,
            v2=v2,
            v3=v3,
            positions=positions,
        )


def _positions(w3: Web3, deployment: Deployment, block: int, owned: int) -> list[PositionView]:
    npm, trader = deployment.position_manager, deployment.trader
    index_calls = [
        (npm, encode_call("NonfungiblePositionManager", "tokenOfOwnerByIndex", trader, i))
        for i in range(owned)
    ]
    ids = [
        decode_result("NonfungiblePositionManager", "tokenOfOwnerByIndex", data)[0]
        for data in call_batch(w3, index_calls, block)
    ]
    details = call_batch(
        w3, [(npm, encode_call("NonfungiblePositionManager", "positions", i)) for i in ids], block
    )
    by_key = {
        (p.token0.address.lower(), p.token1.address.lower(), p.fee): p
        for p in deployment.pools_of("v3")
    }
    out = []
    for token_id, data in zip(ids, details, strict=True):
        fields = decode_result("NonfungiblePositionManager", "positions", data)
        pool = by_key[(fields[2].lower(), fields[3].lower(), fields[4])]
        out.append(PositionView(token_id, pool, fields[5], fields[6], fields[7]))
    return out
