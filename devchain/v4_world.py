"""Uniswap V4 on the dev chain: the real PoolManager, StateView, test routers and pools.

Deployed next to an existing V2/V3 deployment (same tokens, deployer and trader):
`PoolManager` (v4-core), its `StateView` lens (v4-periphery), and v4-core's
`PoolSwapTest` / `PoolModifyLiquidityTest` routers that carry the traffic. Each pool is
initialized at its tokens' USD prices skewed by `skew_bps` and given liquidity in several
ranges through the liquidity router (the positions' owner is the router, so anyone may
later take liquidity out of them).

Hooked pools use a hook address whose low 14 bits are the wanted permission flags
(v4-core `Hooks`), given a one-byte `STOP` code with `anvil_setCode`: no flag that makes
the PoolManager call the hook during initialize or modifyLiquidity is ever set, so the
hook is never called by what the dev chain does.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3

from devchain.abi import encode_call, encode_deploy
from devchain.deploy import MAX_UINT256, Deployment, Token, checksum
from devchain.rpc import TxRequest, execute_block, nonce_at, rpc_call
from devchain.spec import (
    DEFAULT_SPEC,
    DeploymentSpec,
    clamp_range,
    full_range,
    raw_amount,
    raw_price,
    sqrt_price_x96,
    tick_of_price,
)
from exex_bridge.v4_storage import v4_pool_id
from exex_bridge.whitelist import V4_DYNAMIC_FEE_FLAG

log = logging.getLogger(__name__)

BEFORE_SWAP_FLAG: Final = 1 << 7
AFTER_SWAP_FLAG: Final = 1 << 6
BEFORE_SWAP_RETURNS_DELTA_FLAG: Final = 1 << 3
AFTER_SWAP_RETURNS_DELTA_FLAG: Final = 1 << 2
MIN_SQRT_PRICE: Final = 4295128739
MAX_SQRT_PRICE: Final = 1461446703485210103287273184169141223316061434
_KEY: Final = "(address,address,uint24,int24,address)"
_SWAP: Final = bytes(keccak(text=f"swap({_KEY},(bool,int256,uint160),(bool,bool),bytes)"))[:4]
_MODIFY: Final = bytes(keccak(text=f"modifyLiquidity({_KEY},(int24,int24,int256,bytes32),bytes)"))[
    :4
]
_INITIALIZE: Final = bytes(keccak(text=f"initialize({_KEY},uint160)"))[:4]
Call = tuple[str, bytes, str]  # (to, calldata, label) of one trader transaction
_DEPLOY_GAS: Final = 15_000_000
_CALL_GAS: Final = 1_500_000
# Share of a pool's depth given to each range (relative ticks, or None: full range).
_RANGES: Final[tuple[tuple[int | None, int | None, Fraction], ...]] = (
    (None, None, Fraction(1, 2)),
    (-3000, 3000, Fraction(1, 4)),
    (-500, 500, Fraction(1, 8)),
    (100, 1500, Fraction(1, 16)),
    (-1500, -100, Fraction(1, 16)),
)


@dataclass(frozen=True, kw_only=True)
class V4PoolSpec:
    token_a: str
    token_b: str
    fee: int = 3000
    tick_spacing: int = 60
    usd_depth: int = 10_000_000
    skew_bps: int = 0
    # The hook address's permission flags; None: no hooks (the zero address).
    hook_flags: int | None = None


DEFAULT_V4_POOLS: Final = (
    V4PoolSpec(token_a="WETH", token_b="USDC", fee=3000, tick_spacing=60, skew_bps=45),
    V4PoolSpec(token_a="WETH", token_b="DAI", fee=500, tick_spacing=10, skew_bps=-30),
    V4PoolSpec(token_a="WBTC", token_b="WETH", fee=2500, tick_spacing=50, skew_bps=20),
)
# Pools the pathfinder must leave out: a hook that may return swap deltas, a dynamic fee.
HOOKED_V4_POOLS: Final = (
    V4PoolSpec(
        token_a="WETH",
        token_b="USDC",
        fee=3000,
        tick_spacing=60,
        skew_bps=-60,
        hook_flags=BEFORE_SWAP_FLAG | BEFORE_SWAP_RETURNS_DELTA_FLAG,
    ),
    V4PoolSpec(
        token_a="WETH",
        token_b="DAI",
        fee=V4_DYNAMIC_FEE_FLAG,
        tick_spacing=60,
        skew_bps=60,
        hook_flags=0,
    ),
)


@dataclass(frozen=True, kw_only=True)
class V4Pool:
    pool_id: bytes
    token0: Token
    token1: Token
    fee: int
    tick_spacing: int
    hooks: str
    usd_depth: int

    @property
    def key(self) -> tuple[str, str, int, int, str]:
        return (self.token0.address, self.token1.address, self.fee, self.tick_spacing, self.hooks)

    @property
    def label(self) -> str:
        hooked = "" if int(self.hooks, 16) == 0 else f" hooks {self.hooks[-4:]}"
        return f"{self.token0.symbol}/{self.token1.symbol} v4/{self.fee}{hooked}"


@dataclass(frozen=True, kw_only=True)
class V4Deployment:
    pool_manager: str
    state_view: str
    swap_router: str
    liquidity_router: str
    pools: tuple[V4Pool, ...]
    # (pool index, tick_lower, tick_upper, liquidity) of the positions made at deployment.
    positions: tuple[tuple[int, int, int, int], ...]
    block: int


def hook_address(flags: int, serial: int) -> str:
    """An address whose low 14 bits are exactly `flags`."""
    return checksum("0x" + ((0xA4 << 152) | (serial << 16) | flags).to_bytes(20, "big").hex())


def swap_call(pool: V4Pool, zero_for_one: bool, amount_in: int, limit: int = 0) -> bytes:
    """`PoolSwapTest.swap` of exactly `amount_in` (V4: a negative amount is exact input)."""
    if limit == 0:
        limit = MIN_SQRT_PRICE + 1 if zero_for_one else MAX_SQRT_PRICE - 1
    params = (zero_for_one, -amount_in, limit)
    types = [_KEY, "(bool,int256,uint160)", "(bool,bool)", "bytes"]
    return _SWAP + encode(types, [pool.key, params, (False, False), b""])


def modify_call(pool: V4Pool, lower: int, upper: int, delta: int, salt: bytes) -> bytes:
    types = [_KEY, "(int24,int24,int256,bytes32)", "bytes"]
    return _MODIFY + encode(types, [pool.key, (lower, upper, delta, salt), b""])


def _tx(sender: str, to: str | None, data: bytes, gas: int, label: str) -> TxRequest:
    return TxRequest(sender=sender, to=to, data=data, gas=gas, label=label)


def _nonced(w3: Web3, txs: list[TxRequest]) -> list[TxRequest]:
    nonces: dict[str, int] = {}
    out = []
    for tx in txs:
        nonce = nonces.setdefault(tx.sender, nonce_at(w3, tx.sender, "pending"))
        nonces[tx.sender] = nonce + 1
        out.append(
            TxRequest(
                sender=tx.sender, to=tx.to, data=tx.data, gas=tx.gas, nonce=nonce, label=tx.label
            )
        )
    return out


def _block(w3: Web3, txs: list[TxRequest]) -> list[dict[str, object]]:
    _, mined = execute_block(w3, _nonced(w3, txs))
    return mined


def deploy_v4(
    w3: Web3,
    deployment: Deployment,
    pools: tuple[V4PoolSpec, ...] = DEFAULT_V4_POOLS,
    spec: DeploymentSpec = DEFAULT_SPEC,
) -> V4Deployment:
    """Deploy the V4 contracts and `pools` next to `deployment`; returns the addresses."""
    d = deployment.deployer
    (manager_receipt,) = _block(
        w3, [_tx(d, None, encode_deploy("PoolManager", d), _DEPLOY_GAS, "deploy PoolManager")]
    )
    manager = checksum(manager_receipt["contractAddress"])
    lens_and_routers = _block(
        w3,
        [
            _tx(d, None, encode_deploy(name, manager), _DEPLOY_GAS, f"deploy {name}")
            for name in ("StateView", "PoolSwapTest", "PoolModifyLiquidityTest")
        ],
    )
    state_view, swap_router, liquidity_router = (
        checksum(r["contractAddress"]) for r in lens_and_routers
    )
    approvals = [
        _tx(
            owner,
            token.address,
            encode_call("ERC20", "approve", spender, MAX_UINT256),
            _CALL_GAS,
            f"approve {token.symbol}",
        )
        for token in deployment.tokens
        for owner in (d, deployment.trader)
        for spender in (swap_router, liquidity_router)
    ]
    _block(w3, approvals)
    made = [_pool(w3, deployment, ps, serial) for serial, ps in enumerate(pools)]
    _block(
        w3,
        [
            _tx(
                d,
                manager,
                _INITIALIZE + encode([_KEY, "uint160"], [p.key, price]),
                _CALL_GAS,
                f"initialize {p.label}",
            )
            for p, price in made
        ],
    )
    positions = []
    txs = []
    for n, (pool, price) in enumerate(made):
        for lower, upper, liquidity in _positions(spec, pool, price):
            positions.append((n, lower, upper, liquidity))
            txs.append(
                _tx(
                    d,
                    liquidity_router,
                    modify_call(pool, lower, upper, liquidity, b"\0" * 32),
                    _CALL_GAS,
                    f"position {pool.label} [{lower},{upper})",
                )
            )
    _block(w3, txs)
    v4 = V4Deployment(
        pool_manager=manager,
        state_view=state_view,
        swap_router=swap_router,
        liquidity_router=liquidity_router,
        pools=tuple(p for p, _ in made),
        positions=tuple(positions),
        block=int(rpc_call(w3, "eth_blockNumber", []), 16),
    )
    log.info("deployed the PoolManager with %d V4 pools up to block %d", len(made), v4.block)
    return v4


def _pool(w3: Web3, deployment: Deployment, ps: V4PoolSpec, serial: int) -> tuple[V4Pool, int]:
    a, b = deployment.token(ps.token_a), deployment.token(ps.token_b)
    t0, t1 = (a, b) if int(a.address, 16) < int(b.address, 16) else (b, a)
    hooks = "0x" + "00" * 20
    if ps.hook_flags is not None:
        hooks = hook_address(ps.hook_flags, serial + 1)
        rpc_call(w3, "anvil_setCode", [hooks, "0x00"])
    pool_id = v4_pool_id(
        bytes.fromhex(t0.address[2:]),
        bytes.fromhex(t1.address[2:]),
        ps.fee,
        ps.tick_spacing,
        bytes.fromhex(hooks[2:]),
    )
    skew = ps.skew_bps if t0.symbol == ps.token_a else -ps.skew_bps
    price = raw_price(DEFAULT_SPEC.token(t0.symbol), DEFAULT_SPEC.token(t1.symbol), skew)
    pool = V4Pool(
        pool_id=pool_id,
        token0=t0,
        token1=t1,
        fee=ps.fee,
        tick_spacing=ps.tick_spacing,
        hooks=hooks,
        usd_depth=ps.usd_depth,
    )
    return pool, sqrt_price_x96(price)


def _positions(spec: DeploymentSpec, pool: V4Pool, sqrt_price: int) -> list[tuple[int, int, int]]:
    """(lower, upper, liquidity) per range: a full-range position worth `share` of the
    depth in token0 has L = x·√P."""
    spacing = pool.tick_spacing
    price = Fraction(sqrt_price * sqrt_price, 2**192)
    current = tick_of_price(price)
    out = []
    for lo, hi, share in _RANGES:
        if lo is None or hi is None:
            lower, upper = full_range(spacing)
        else:
            lower, upper = clamp_range(current + lo, current + hi + spacing, spacing)
        x = raw_amount(spec.token(pool.token0.symbol), pool.usd_depth * share)
        out.append((lower, upper, max(1, int(x * sqrt_price) >> 96)))
    return out


class V4Traffic:
    """Random V4 actions for `TrafficGenerator(extra_actions=…)`: exact-input swaps both
    ways (some with a price limit), new positions, and liquidity taken out of the
    deployment's positions (which always hold enough, whatever reorgs did)."""

    def __init__(self, v4: V4Deployment, pools: tuple[V4Pool, ...] | None = None) -> None:
        self.v4 = v4
        self.pools = pools if pools is not None else v4.pools

    def actions(
        self, swap: int = 4, add: int = 1, remove: int = 1
    ) -> list[tuple[Callable[[random.Random], Call], int]]:
        """Weighted actions for `TrafficGenerator(extra_actions=…)`."""
        return [(self.swap, swap), (self.add, add), (self.remove, remove)]

    def swap(self, rng: random.Random) -> Call:
        pool = rng.choice(self.pools)
        zero_for_one, amount = self.swap_size(rng, pool)
        data = swap_call(pool, zero_for_one, amount)
        return self.v4.swap_router, data, f"v4 swap {pool.label}"

    @staticmethod
    def swap_size(rng: random.Random, pool: V4Pool) -> tuple[bool, int]:
        """A direction and an input worth 0.01 % .. 3 % of the pool's depth."""
        zero_for_one = rng.random() < 0.5
        token = pool.token0 if zero_for_one else pool.token1
        usd = pool.usd_depth * 1e-4 * (300 ** rng.random())
        return zero_for_one, max(1, raw_amount(DEFAULT_SPEC.token(token.symbol), Fraction(usd)))

    def add(self, rng: random.Random) -> Call:
        n = rng.randrange(len(self.v4.positions))
        pool_index, lower, upper, liquidity = self.v4.positions[n]
        pool = self.v4.pools[pool_index]
        width = pool.tick_spacing * rng.randint(1, 40)
        start = lower if upper - lower < 2 * width else rng.randrange(lower, upper - width)
        low, high = clamp_range(start, start + width, pool.tick_spacing)
        salt = rng.getrandbits(256).to_bytes(32, "big")
        delta = max(1, liquidity // rng.randint(20, 2000))
        data = modify_call(pool, low, high, delta, salt)
        return self.v4.liquidity_router, data, f"v4 add {pool.label} [{low},{high})"

    def remove(self, rng: random.Random) -> Call:
        pool_index, lower, upper, liquidity = rng.choice(self.v4.positions)
        pool = self.v4.pools[pool_index]
        delta = -max(1, liquidity // rng.randint(500, 5000))
        data = modify_call(pool, lower, upper, delta, b"\0" * 32)
        return self.v4.liquidity_router, data, f"v4 remove {pool.label}"
