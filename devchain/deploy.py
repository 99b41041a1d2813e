"""Deploys the real Uniswap V2/V3 contracts, tokens, pools and liquidity to a dev chain."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from web3 import Web3

from devchain.abi import call, encode_call, encode_deploy
from devchain.errors import DeploymentError
from devchain.rpc import TxRequest, execute_block, nonce_at, rpc_call
from devchain.spec import (
    DEFAULT_SPEC,
    TICK_SPACING_BY_FEE,
    DeploymentSpec,
    PoolSpec,
    Protocol,
    TokenSpec,
    clamp_range,
    full_range,
    raw_amount,
    raw_price,
    sqrt_price_x96,
    tick_of_price,
)
from devchain.tokens import patch_decimals

log = logging.getLogger(__name__)

MAX_UINT256: Final = 2**256 - 1
DEADLINE: Final = 2**63
ZERO_ADDRESS: Final = "0x" + "00" * 20
_DEPLOY_GAS: Final = 12_000_000
_CREATE_POOL_GAS: Final = 6_000_000
_CALL_GAS: Final = 1_000_000
# Share of a V3 pool's depth given to each position range (relative ticks, or None: full).
_V3_RANGES: Final[tuple[tuple[int | None, int | None, Fraction], ...]] = (
    (None, None, Fraction(1, 2)),
    (-4000, 4000, Fraction(1, 4)),
    (-600, 600, Fraction(1, 8)),
    (-60, 60, Fraction(1, 40)),
    (120, 1200, Fraction(1, 20)),
    (-1200, -120, Fraction(1, 20)),
)


@dataclass(frozen=True, kw_only=True)
class Token:
    symbol: str
    address: str
    decimals: int


@dataclass(frozen=True, kw_only=True)
class Pool:
    address: str
    protocol: Protocol
    token0: Token
    token1: Token
    fee: int
    tick_spacing: int | None

    @property
    def label(self) -> str:
        kind = f"v3/{self.fee}" if self.protocol == "v3" else "v2"
        return f"{self.token0.symbol}/{self.token1.symbol} {kind}"


@dataclass(frozen=True, kw_only=True)
class Deployment:
    chain_id: int
    deployer: str
    trader: str
    tokens: tuple[Token, ...]
    pools: tuple[Pool, ...]
    v2_factory: str
    v3_factory: str
    position_manager: str
    swap_router: str
    weth: str
    block: int

    def token(self, symbol: str) -> Token:
        for token in self.tokens:
            if token.symbol == symbol:
                return token
        raise KeyError(symbol)

    def pools_of(self, protocol: Protocol) -> tuple[Pool, ...]:
        return tuple(p for p in self.pools if p.protocol == protocol)


class _Deployer:
    def __init__(self, w3: Web3, spec: DeploymentSpec, deployer: str, trader: str) -> None:
        self.w3 = w3
        self.spec = spec
        self.deployer = deployer
        self.trader = trader
        self.nonces = {deployer: nonce_at(w3, deployer), trader: nonce_at(w3, trader)}

    def tx(self, sender: str, to: str | None, data: bytes, gas: int, label: str) -> TxRequest:
        nonce = self.nonces[sender]
        self.nonces[sender] = nonce + 1
        return TxRequest(sender=sender, to=to, data=data, gas=gas, nonce=nonce, label=label)

    def block(self, txs: list[TxRequest]) -> list[dict[str, object]]:
        _, mined = execute_block(self.w3, txs)
        return mined

    def deploy_contracts(self) -> tuple[dict[str, str], list[str]]:
        token_txs = [
            self.tx(
                self.deployer,
                None,
                encode_deploy("ERC20", self._supply(t)),
                3_000_000,
                f"deploy {t.symbol}",
            )
            for t in self.spec.tokens
        ]
        core = [
            self.tx(
                self.deployer,
                None,
                encode_deploy("UniswapV2Factory", self.deployer),
                _DEPLOY_GAS,
                "deploy UniswapV2Factory",
            ),
            self.tx(
                self.deployer,
                None,
                encode_deploy("UniswapV3Factory"),
                _DEPLOY_GAS,
                "deploy UniswapV3Factory",
            ),
        ]
        mined = self.block(token_txs + core)
        addresses = [checksum(r["contractAddress"]) for r in mined]
        tokens = {t.symbol: addresses[i] for i, t in enumerate(self.spec.tokens)}
        return tokens, addresses[len(token_txs) :]

    def _supply(self, token: TokenSpec) -> int:
        return raw_amount(token, self.spec.supply_usd)


def checksum(address: object) -> str:
    return str(Web3.to_checksum_address(str(address)))


def _sorted_pair(a: Token, b: Token) -> tuple[Token, Token]:
    return (a, b) if int(a.address, 16) < int(b.address, 16) else (b, a)


def deploy(
    w3: Web3, spec: DeploymentSpec = DEFAULT_SPEC, deployer_index: int = 0, trader_index: int = 1
) -> Deployment:
    """Deploys everything in a handful of explicitly mined blocks; returns the addresses."""
    accounts = [checksum(a) for a in rpc_call(w3, "eth_accounts", [])]
    d = _Deployer(w3, spec, accounts[deployer_index], accounts[trader_index])
    token_addrs, (v2_factory, v3_factory) = d.deploy_contracts()
    tokens = {}
    for t in spec.tokens:
        patch_decimals(w3, token_addrs[t.symbol], t.decimals)
        address = checksum(token_addrs[t.symbol])
        tokens[t.symbol] = Token(symbol=t.symbol, address=address, decimals=t.decimals)
    weth = (tokens["WETH"] if "WETH" in tokens else next(iter(tokens.values()))).address
    periphery = d.block(
        [
            d.tx(
                d.deployer,
                None,
                encode_deploy("NonfungiblePositionManager", v3_factory, weth, ZERO_ADDRESS),
                _DEPLOY_GAS,
                "deploy NPM",
            ),
            d.tx(
                d.deployer,
                None,
                encode_deploy("SwapRouter", v3_factory, weth),
                _DEPLOY_GAS,
                "deploy SwapRouter",
            ),
        ]
    )
    npm, router = (checksum(r["contractAddress"]) for r in periphery)
    pools = _create_pools(d, tokens, v2_factory, v3_factory)
    _fund_and_approve(d, tokens, npm, router)
    _initialize_v3(d, spec, pools)
    _add_liquidity(d, spec, pools, npm)
    deployment = Deployment(
        chain_id=int(rpc_call(w3, "eth_chainId", []), 16),
        deployer=d.deployer,
        trader=d.trader,
        tokens=tuple(tokens.values()),
        pools=tuple(p for p, _ in pools),
        v2_factory=v2_factory,
        v3_factory=v3_factory,
        position_manager=npm,
        swap_router=router,
        weth=weth,
        block=int(rpc_call(w3, "eth_blockNumber", []), 16),
    )
    log.info(
        "deployed %d tokens and %d pools up to block %d",
        len(deployment.tokens),
        len(deployment.pools),
        deployment.block,
    )
    return deployment


def _create_pools(
    d: _Deployer, tokens: dict[str, Token], v2_factory: str, v3_factory: str
) -> list[tuple[Pool, PoolSpec]]:
    txs = []
    for ps in d.spec.pools:
        a, b = tokens[ps.token_a].address, tokens[ps.token_b].address
        if ps.protocol == "v2":
            txs.append(
                d.tx(
                    d.deployer,
                    v2_factory,
                    encode_call("UniswapV2Factory", "createPair", a, b),
                    _CREATE_POOL_GAS,
                    f"createPair {ps.token_a}/{ps.token_b}",
                )
            )
        else:
            txs.append(
                d.tx(
                    d.deployer,
                    v3_factory,
                    encode_call("UniswapV3Factory", "createPool", a, b, ps.fee),
                    _CREATE_POOL_GAS,
                    f"createPool {ps.token_a}/{ps.token_b}/{ps.fee}",
                )
            )
    for start in range(0, len(txs), 8):  # 8 x 6M gas fits a 60M block
        d.block(txs[start : start + 8])
    pools = []
    for ps in d.spec.pools:
        t0, t1 = _sorted_pair(tokens[ps.token_a], tokens[ps.token_b])
        if ps.protocol == "v2":
            (addr,) = call(d.w3, v2_factory, "UniswapV2Factory", "getPair", t0.address, t1.address)
            fee, spacing = 3000, None
        else:
            (addr,) = call(
                d.w3, v3_factory, "UniswapV3Factory", "getPool", t0.address, t1.address, ps.fee
            )
            fee, spacing = ps.fee, TICK_SPACING_BY_FEE[ps.fee]
        if int(addr, 16) == 0:
            raise DeploymentError(f"pool {ps} was not created")
        pool = Pool(
            address=checksum(addr),
            protocol=ps.protocol,
            token0=t0,
            token1=t1,
            fee=fee,
            tick_spacing=spacing,
        )
        pools.append((pool, ps))
    return pools


def _fund_and_approve(d: _Deployer, tokens: dict[str, Token], npm: str, router: str) -> None:
    txs = []
    for t in d.spec.tokens:
        addr = tokens[t.symbol].address
        txs.append(
            d.tx(
                d.deployer,
                addr,
                encode_call("ERC20", "transfer", d.trader, d._supply(t) // 2),
                _CALL_GAS,
                f"fund trader {t.symbol}",
            )
        )
        txs.extend(
            d.tx(
                owner,
                addr,
                encode_call("ERC20", "approve", spender, MAX_UINT256),
                _CALL_GAS,
                f"approve {t.symbol}",
            )
            for owner in (d.deployer, d.trader)
            for spender in (npm, router)
        )
    d.block(txs)


def _initialize_v3(d: _Deployer, spec: DeploymentSpec, pools: list[tuple[Pool, PoolSpec]]) -> None:
    txs = []
    for pool, ps in pools:
        if pool.protocol != "v3":
            continue
        price = raw_price(
            spec.token(pool.token0.symbol),
            spec.token(pool.token1.symbol),
            _skew_for_token0(pool, ps),
        )
        txs.append(
            d.tx(
                d.deployer,
                pool.address,
                encode_call("UniswapV3Pool", "initialize", sqrt_price_x96(price)),
                _CALL_GAS,
                f"initialize {pool.label}",
            )
        )
    d.block(txs)


def _skew_for_token0(pool: Pool, ps: PoolSpec) -> int:
    # skew_bps is stated for token_a priced in token_b; flip it when token_a sorts second.
    return ps.skew_bps if pool.token0.symbol == ps.token_a else -ps.skew_bps


def _add_liquidity(
    d: _Deployer, spec: DeploymentSpec, pools: list[tuple[Pool, PoolSpec]], npm: str
) -> None:
    txs = []
    for pool, ps in pools:
        s0, s1 = spec.token(pool.token0.symbol), spec.token(pool.token1.symbol)
        if pool.protocol == "v2":
            price = raw_price(s0, s1, _skew_for_token0(pool, ps))
            amount0 = raw_amount(s0, Fraction(ps.usd_depth, 2))
            amount1 = int(amount0 * price)
            txs += [
                d.tx(
                    d.deployer,
                    pool.token0.address,
                    encode_call("ERC20", "transfer", pool.address, amount0),
                    _CALL_GAS,
                    f"seed {pool.label} token0",
                ),
                d.tx(
                    d.deployer,
                    pool.token1.address,
                    encode_call("ERC20", "transfer", pool.address, amount1),
                    _CALL_GAS,
                    f"seed {pool.label} token1",
                ),
                d.tx(
                    d.deployer,
                    pool.address,
                    encode_call("UniswapV2Pair", "mint", d.deployer),
                    _CALL_GAS,
                    f"mint {pool.label}",
                ),
            ]
        else:
            txs += _v3_positions(d, spec, pool, ps, npm)
    d.block(txs)


def _v3_positions(
    d: _Deployer, spec: DeploymentSpec, pool: Pool, ps: PoolSpec, npm: str
) -> list[TxRequest]:
    s0, s1 = spec.token(pool.token0.symbol), spec.token(pool.token1.symbol)
    spacing = pool.tick_spacing or 1
    current = tick_of_price(raw_price(s0, s1, _skew_for_token0(pool, ps)))
    txs = []
    for lo, hi, share in _V3_RANGES:
        if lo is None or hi is None:
            lower, upper = full_range(spacing)
        else:
            lower, upper = clamp_range(current + lo, current + hi + spacing, spacing)
        usd = ps.usd_depth * share
        params = (
            pool.token0.address,
            pool.token1.address,
            pool.fee,
            lower,
            upper,
            raw_amount(s0, usd),
            raw_amount(s1, usd),
            0,
            0,
            d.deployer,
            DEADLINE,
        )
        txs.append(
            d.tx(
                d.deployer,
                npm,
                encode_call("NonfungiblePositionManager", "mint", params),
                _CALL_GAS,
                f"position {pool.label} [{lower},{upper})",
            )
        )
    return txs
