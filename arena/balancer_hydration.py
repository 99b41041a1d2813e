"""Balancer V2 weighted pools read from a node's JSON-RPC at one block.

Per pool (its 32-byte pool id; the first 20 bytes are the pool contract): the Vault
(`getVault`), the tokens and balances (`Vault.getPoolTokens`), the normalized weights,
the swap fee and the generation. Pools of the 20220908 generation and later answer
`getRateProviders` and `getScalingFactors`; the first generation (20210418) answers
neither and its scaling factors come from the tokens' `decimals()`. A pool with a rate
provider is excluded: its scaling factors move with `getRate()`, which the stream does not
carry. Every call of one round is one JSON-RPC batch pinned to the block; a call that
reverts is an answer (None), not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final, cast

import msgspec
from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from web3 import Web3
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from arena.coin_pools import CoinPoolState, WeightedParams
from arena.engine import ArenaEngine
from arena.hydration import DEFAULT_BATCH_SIZE, BlockRef, HydrationError

log = logging.getLogger(__name__)

__all__ = [
    "BalancerExclusion",
    "BalancerPoolSnapshot",
    "hydrate_balancer_pools",
    "set_balancer_states",
]

_GET_VAULT: Final = bytes.fromhex("8d928af8")
_GET_POOL_TOKENS: Final = bytes.fromhex("f94d4668")
_GET_NORMALIZED_WEIGHTS: Final = bytes.fromhex("f89f27ed")
_GET_SWAP_FEE: Final = bytes.fromhex("55c67628")
_GET_RATE_PROVIDERS: Final = bytes.fromhex("238a2d59")
_GET_SCALING_FACTORS: Final = bytes.fromhex("1dd746ea")
_DECIMALS: Final = bytes.fromhex("313ce567")
_ONE: Final = 10**18
RATE_PROVIDERS: Final = "balancer_rate_providers"  # scaling moves with getRate()
NOT_WEIGHTED: Final = "balancer_not_weighted"  # no weighted-pool answers
FIRST_GENERATION: Final = 1  # 20210418 WeightedPool / WeightedPool2Tokens
LATER_GENERATION: Final = 2  # 20220908 weighted pool v2 and the same math after it


class BalancerPoolSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    pool_id: bytes
    block: BlockRef
    state: CoinPoolState


class BalancerExclusion(msgspec.Struct, frozen=True, kw_only=True):
    """A pool that cannot be modelled exactly; `reason` labels the exclusion metric."""

    pool_id: bytes
    reason: str
    detail: str


def _batch(w3: Web3, block: BlockRef, calls: Sequence[tuple[bytes, bytes]]) -> list[bytes | None]:
    """Raw answers in order; None for a call that reverted or returned nothing. A failed
    request (transport, a batch-level error) raises HydrationError."""
    provider = w3.provider
    if not isinstance(provider, JSONBaseProvider):
        raise HydrationError("-", "batch", f"{type(provider).__name__} cannot batch")
    tag: object = hex(block) if isinstance(block, int) else {"blockHash": block}
    out: list[bytes | None] = []
    for start in range(0, len(calls), DEFAULT_BATCH_SIZE):
        chunk = calls[start : start + DEFAULT_BATCH_SIZE]
        requests = [
            (
                cast(RPCEndpoint, "eth_call"),
                [{"to": "0x" + to.hex(), "data": "0x" + data.hex()}, tag],
            )
            for to, data in chunk
        ]
        responses = provider.make_batch_request(requests)
        if not isinstance(responses, list):
            error = responses.get("error", responses)
            raise HydrationError("0x" + chunk[0][0].hex(), "batch", error)
        for response in cast(list[dict[str, Any]], responses):
            result = response.get("result")
            answered = "error" not in response and result
            out.append(bytes.fromhex(str(result)[2:]) if answered else None)
    return out


def _one(data: bytes | None, types: list[str]) -> tuple[Any, ...] | None:
    if data is None:
        return None
    try:
        return tuple(decode(types, data))
    except DecodingError:  # not this interface's answer
        return None


def hydrate_balancer_pools(
    w3: Web3, pool_ids: Sequence[bytes], block: BlockRef
) -> list[BalancerPoolSnapshot | BalancerExclusion]:
    """Each pool's state at `block`, or why it is excluded; in the order given.

    A pool that does not answer `getVault`, `getSwapFeePercentage` or the Vault's
    `getPoolTokens` is excluded as `balancer_not_weighted` (a wrong whitelist entry must
    not keep every other pool from syncing); a failed request raises HydrationError."""
    pools = [pid[:20] for pid in pool_ids]
    first = _batch(
        w3,
        block,
        [
            (p, sel)
            for p in pools
            for sel in (_GET_VAULT, _GET_NORMALIZED_WEIGHTS, _GET_SWAP_FEE, _GET_RATE_PROVIDERS)
        ],
    )
    heads = [first[4 * k : 4 * k + 4] for k in range(len(pools))]
    vaults: list[bytes] = []
    for vault, _, fee, _ in heads:
        got_vault, got_fee = _one(vault, ["address"]), _one(fee, ["uint256"])
        readable = got_vault is not None and got_fee is not None
        # an unreadable pool asks the zero address, which answers nothing
        vaults.append(bytes.fromhex(str(got_vault[0])[2:]) if readable and got_vault else bytes(20))
    second = _batch(
        w3,
        block,
        [(vault, _GET_POOL_TOKENS + pid) for vault, pid in zip(vaults, pool_ids, strict=True)]
        + [(p, _GET_SCALING_FACTORS) for p in pools],
    )
    out: list[BalancerPoolSnapshot | BalancerExclusion] = []
    n = len(pools)
    for k, pid in enumerate(pool_ids):
        tokens_raw = _one(second[k], ["address[]", "uint256[]", "uint256"])
        if tokens_raw is None or _one(heads[k][2], ["uint256"]) is None:
            out.append(
                BalancerExclusion(pool_id=pid, reason=NOT_WEIGHTED, detail="no Vault answer")
            )
            continue
        coins = tuple(bytes.fromhex(str(t)[2:]) for t in tokens_raw[0])
        balances = tuple(int(b) for b in tokens_raw[1])
        out.append(
            _snapshot(
                w3, block, pid, head=heads[k], coins=coins, balances=balances, scaling=second[n + k]
            )
        )
    return out


def _snapshot(
    w3: Web3,
    block: BlockRef,
    pid: bytes,
    *,
    head: Sequence[bytes | None],
    coins: tuple[bytes, ...],
    balances: tuple[int, ...],
    scaling: bytes | None,
) -> BalancerPoolSnapshot | BalancerExclusion:
    weights_raw = _one(head[1], ["uint256[]"])
    if weights_raw is None or len(weights_raw[0]) != len(coins):
        return BalancerExclusion(pool_id=pid, reason=NOT_WEIGHTED, detail="no matching weights")
    providers = _one(head[3], ["address[]"])
    if providers is not None and any(int(str(a), 16) for a in providers[0]):
        return BalancerExclusion(pool_id=pid, reason=RATE_PROVIDERS, detail=str(providers[0]))
    fee = cast(tuple[int], _one(head[2], ["uint256"]))[0]
    if providers is None:  # first generation: factors from the tokens' decimals
        version = FIRST_GENERATION
        answers = _batch(w3, block, [(c, _DECIMALS) for c in coins])
        decimals = [_one(a, ["uint8"]) for a in answers]
        if any(d is None or d[0] > 18 for d in decimals):
            return BalancerExclusion(pool_id=pid, reason=NOT_WEIGHTED, detail="token decimals")
        factors = tuple(_ONE * 10 ** (18 - cast(tuple[int], d)[0]) for d in decimals)
    else:
        version = LATER_GENERATION
        got = _one(scaling, ["uint256[]"])
        if got is None or len(got[0]) != len(coins):
            return BalancerExclusion(pool_id=pid, reason=NOT_WEIGHTED, detail="scaling factors")
        factors = tuple(int(f) for f in got[0])
    params = WeightedParams(
        weights=tuple(int(w) for w in weights_raw[0]),
        scaling_factors=factors,
        swap_fee=int(fee),
        version=version,
    )
    state = CoinPoolState(coins=coins, balances=balances, params=params)
    return BalancerPoolSnapshot(pool_id=pid, block=block, state=state)


def set_balancer_states(engine: ArenaEngine, w3: Web3, indices: Sequence[int], block: int) -> int:
    """Hydrate the given Balancer pools at `block` into the engine: each becomes LIVE with
    its state, or is excluded (tracked, never quoted, not retried; counted by reason in
    `arena_coin_pools_excluded_total` and logged once). Returns the number hydrated."""
    if not indices:
        return 0
    ids = [engine.registry.pools[i].key for i in indices]
    hydrated = 0
    for index, found in zip(indices, hydrate_balancer_pools(w3, ids, block), strict=True):
        if isinstance(found, BalancerExclusion):
            if engine.coins.exclude(index, found.reason):
                engine.metrics.coin_pools_excluded.labels(reason=found.reason).inc()
                log.warning(
                    "Balancer pool 0x%s excluded at block %d: %s: %s",
                    found.pool_id.hex(),
                    block,
                    found.reason,
                    found.detail,
                )
            continue
        engine.set_coin_state(index, found.state)
        hydrated += 1
    return hydrated
