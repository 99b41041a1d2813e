"""Hypothesis strategies for small markets that hold an arbitrage.

A market is an `ArenaEngine` with V2 and V3 pools over a few tokens, one of them WETH.
Every pool is first priced from one token price vector (so no cycle is profitable),
then one pool on a WETH pair is skewed. V3 pools get several positions whose tick map is
built as UniswapV3Pool does it (`liquidityNet` += L at the lower tick and −= L at the
upper, `liquidityGross` += L at both), their active liquidity is the sum over the
positions containing the current tick, and their price is either exactly a tick's
`getSqrtRatioAtTick` or strictly between two ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from math import isqrt
from typing import Any, Final

from hypothesis import strategies as st

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.registry import PoolKind
from arena.sync_state import SyncState
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import PROTOCOL_SHORT, Token, WhitelistedPool
from pathfinder.tick_math import get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio

WETH: Final = Token(
    address=bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"), decimals=18, symbol="WETH"
)
# Addresses on both sides of WETH's, so that WETH is token0 in some pools, token1 in others.
OTHER_TOKENS: Final = tuple(
    Token(address=bytes([first]) * 20, decimals=decimals, symbol=symbol)
    for first, symbol, decimals in [
        (0xA0, "USDC", 6),
        (0x6B, "DAI", 18),
        (0x22, "WBTC", 8),
        (0x1F, "UNI", 18),
        (0xD1, "LINK", 18),
    ]
)
V3_FEE_SPACING: Final = ((100, 1), (500, 10), (3000, 60), (10000, 200))
V2_FEES: Final = (None, 3000, 2500, 1000)  # None: the whitelist leaves the 0.3 % default
Q96: Final = 1 << 96
U112_MAX: Final = (1 << 112) - 1
USDC: Final = OTHER_TOKENS[0]  # address 0xa0… < WETH's 0xc0…: token0 against WETH
R_WETH: Final = 1_000 * 10**18
R_USDC: Final = 3_000_000 * 10**6  # 3000 USDC per WETH

Position = tuple[int, int, int]  # tick_lower, tick_upper, liquidity


@dataclass(frozen=True)
class Scale:
    """Token prices (wei per raw unit, before decimals) and pool depths (wei of value)."""

    price_exponent: tuple[float, float]  # log10 of the price in WETH of one whole token
    depth_exponent: tuple[float, float]  # log10 of each side's value, in wei
    use_decimals: bool


REALISTIC: Final = Scale(price_exponent=(-4.0, 1.5), depth_exponent=(18.0, 23.0), use_decimals=True)
# Reserves of 10^4..10^6.5 raw units: small enough for an exhaustive integer search.
SMALL: Final = Scale(price_exponent=(-0.5, 0.5), depth_exponent=(4.0, 6.5), use_decimals=False)


@dataclass
class PoolSpec:
    index: int
    kind: PoolKind
    token0: Token
    token1: Token
    fee: int  # hundredths of a bip, as the arena models it
    tick_spacing: int = 0
    positions: list[Position] = field(default_factory=list)


@dataclass
class Market:
    engine: ArenaEngine
    tokens: list[Token]
    price: dict[bytes, Fraction]  # wei per raw unit, the consistent (unskewed) prices
    pools: list[PoolSpec]
    skewed: int  # pool index whose price was moved
    skew: float  # its token1-per-token0 price was multiplied by this

    @property
    def weth(self) -> bytes:
        return WETH.address

    def value_in_wei(self, token: bytes) -> Fraction:
        return self.price[token]

    def settled(
        self,
        block: int = 1,
        *,
        base_fee: int = 0,
        sync: SyncState = SyncState.SYNCED,
        changed: frozenset[int] | None = None,
    ) -> Settled:
        """A settled point over what the engine marked changed (or `changed`)."""
        taken = frozenset(self.engine.take_changed())
        return Settled(
            block=block,
            base_fee_per_gas=base_fee,
            changed=taken if changed is None else changed,
            after_reorg=False,
            sync=sync,
        )


def whitelisted(spec: PoolSpec) -> WhitelistedPool:
    address = bytes([0xA0 + spec.index % 16, spec.index // 16]) + bytes(18)
    v3 = spec.kind is PoolKind.V3
    return WhitelistedPool(
        key=address,
        address=address,
        protocol=Protocol.UNISWAP_V3 if v3 else Protocol.UNISWAP_V2,
        token0=spec.token0,
        token1=spec.token1,
        fee=spec.fee if v3 or spec.fee != 3000 else None,
        tick_spacing=spec.tick_spacing if v3 else None,
    )


def tick_map(positions: list[Position]) -> dict[int, tuple[int, int]]:
    """tick -> (liquidityNet, liquidityGross) as Tick.update leaves them after the mints."""
    out: dict[int, tuple[int, int]] = {}
    for lower, upper, liquidity in positions:
        for tick, net in ((lower, liquidity), (upper, -liquidity)):
            old_net, old_gross = out.get(tick, (0, 0))
            out[tick] = (old_net + net, old_gross + liquidity)
    return out


def active_liquidity(positions: list[Position], tick: int) -> int:
    return sum(liquidity for lower, upper, liquidity in positions if lower <= tick < upper)


def sqrt_price_x96_of(price: Fraction) -> int:
    """floor(√price · 2^96), price in token1 raw units per token0 raw unit."""
    return isqrt(price.numerator * Q96 * Q96 // price.denominator)


@st.composite
def token_prices(draw: st.DrawFn, tokens: list[Token], scale: Scale) -> dict[bytes, Fraction]:
    price = {WETH.address: Fraction(1)}
    for token in tokens:
        if token.address == WETH.address:
            continue
        whole = 10 ** draw(st.floats(*scale.price_exponent))
        per_unit = Fraction(whole) * (10 ** (18 - token.decimals) if scale.use_decimals else 1)
        price[token.address] = per_unit.limit_denominator(10**12) or Fraction(1, 10**12)
    return price


def _ordered(a: Token, b: Token) -> tuple[Token, Token]:
    return (a, b) if a.address < b.address else (b, a)


@st.composite
def v2_pool(draw: st.DrawFn, index: int, a: Token, b: Token) -> PoolSpec:
    t0, t1 = _ordered(a, b)
    fee = draw(st.sampled_from(V2_FEES))
    return PoolSpec(index, PoolKind.V2, t0, t1, 3000 if fee is None else fee)


def v2_reserves(
    draw: st.DrawFn, spec: PoolSpec, price: dict[bytes, Fraction], scale: Scale, skew: float
) -> tuple[int, int]:
    depth = Fraction(10 ** draw(st.floats(*scale.depth_exponent)))
    r0 = int(depth / price[spec.token0.address])
    r1 = int(depth / price[spec.token1.address] * Fraction(skew))
    return max(1, min(r0, U112_MAX)), max(1, min(r1, U112_MAX))


@st.composite
def v3_positions(draw: st.DrawFn, tick: int, spacing: int, liquidity: int) -> list[Position]:
    """Positions around `tick`: at least one containing it, maybe some above or below."""
    floor_tick = tick // spacing * spacing
    positions = []
    for _ in range(draw(st.integers(1, 3))):
        below = draw(st.integers(0, 12))
        above = draw(st.integers(1, 12))
        share = draw(st.integers(1, 4))
        positions.append(
            (
                floor_tick - below * spacing,
                floor_tick + above * spacing,
                max(1, liquidity * share // 4),
            )
        )
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(-20, 20))
        width = draw(st.integers(1, 10))
        lower = floor_tick + start * spacing
        positions.append((lower, lower + width * spacing, max(1, liquidity // 2)))
    return positions


@st.composite
def v3_pool(draw: st.DrawFn, index: int, a: Token, b: Token) -> PoolSpec:
    t0, t1 = _ordered(a, b)
    fee, spacing = draw(st.sampled_from(V3_FEE_SPACING))
    return PoolSpec(index, PoolKind.V3, t0, t1, fee, spacing)


def v3_state(
    draw: st.DrawFn, spec: PoolSpec, price: dict[bytes, Fraction], scale: Scale, skew: float
) -> tuple[int, int, int]:
    """(sqrt_price_x96, tick, active liquidity); also fills spec.positions."""
    p = price[spec.token0.address] / price[spec.token1.address] * Fraction(skew)
    sqrt_price = sqrt_price_x96_of(p)
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    if draw(st.booleans()):  # exactly on a tick, possibly an initialized one
        sqrt_price = get_sqrt_ratio_at_tick(tick)
    depth0 = Fraction(10 ** draw(st.floats(*scale.depth_exponent))) / price[spec.token0.address]
    # virtual reserve of token0 = L / √P: L of that depth, then spread over a few positions
    liquidity = max(1, int(depth0 * sqrt_price / Q96))
    spec.positions = draw(v3_positions(tick, spec.tick_spacing, liquidity))
    return sqrt_price, tick, active_liquidity(spec.positions, tick)


@st.composite
def markets(
    draw: st.DrawFn,
    *,
    scale: Scale = REALISTIC,
    others: tuple[int, int] = (1, 3),
    extra_pools: tuple[int, int] = (0, 4),
    v3: bool = True,
    skew: tuple[float, float] = (0.01, 0.2),
) -> Market:
    """WETH plus 1..3 tokens; two pools on WETH/A (one of them skewed) and a few more."""
    n_others = draw(st.integers(*others))
    tokens = [WETH, *draw(st.permutations(OTHER_TOKENS))[:n_others]]
    price = draw(token_prices(tokens, scale))
    kinds = st.sampled_from([v2_pool, v3_pool] if v3 else [v2_pool])
    pairs = [(WETH, tokens[1]), (WETH, tokens[1])]
    for _ in range(draw(st.integers(*extra_pools))):
        a, b = draw(st.lists(st.sampled_from(tokens), min_size=2, max_size=2, unique=True))
        pairs.append((a, b))
    specs = [draw(draw(kinds)(i, a, b)) for i, (a, b) in enumerate(pairs)]
    skewed = draw(st.integers(0, 1))
    factor = 1 + draw(st.floats(*skew))
    factor = factor if draw(st.booleans()) else 1 / factor
    return _build(draw, tokens, price, specs, skewed=skewed, factor=factor, scale=scale)


@st.composite
def v2_cycles(
    draw: st.DrawFn, hops: int, *, scale: Scale = SMALL, skew: tuple[float, float] = (0.0, 0.2)
) -> Market:
    """Only the pools of one cycle: WETH/A twice (2 hops) or WETH/A, A/B, B/WETH (3)."""
    tokens = [WETH, *draw(st.permutations(OTHER_TOKENS))[: hops - 1]]
    price = draw(token_prices(tokens, scale))
    ring = (
        [(WETH, tokens[1]), (WETH, tokens[1])]
        if hops == 2
        else [(WETH, tokens[1]), (tokens[1], tokens[2]), (tokens[2], WETH)]
    )
    specs = [draw(v2_pool(i, a, b)) for i, (a, b) in enumerate(ring)]
    factor = 1 + draw(st.floats(*skew))
    factor = factor if draw(st.booleans()) else 1 / factor
    skewed = draw(st.integers(0, hops - 1))
    return _build(draw, tokens, price, specs, skewed=skewed, factor=factor, scale=scale)


def _build(
    draw: st.DrawFn,
    tokens: list[Token],
    price: dict[bytes, Fraction],
    specs: list[PoolSpec],
    *,
    skewed: int,
    factor: float,
    scale: Scale,
) -> Market:
    engine = ArenaEngine(capacity=max(16, len(specs)))
    indices = engine.add_pools([whitelisted(s) for s in specs])
    if indices != [s.index for s in specs]:
        raise RuntimeError(f"engine indices {indices} differ from the specs")
    for spec in specs:
        skew = factor if spec.index == skewed else 1.0
        if spec.kind is PoolKind.V2:
            engine.set_reserves(spec.index, *v2_reserves(draw, spec, price, scale, skew))
        else:
            sqrt_price, tick, liquidity = v3_state(draw, spec, price, scale, skew)
            ticks = tick_map(spec.positions)
            engine.set_slot0(spec.index, sqrt_price, liquidity, tick, ticks=ticks)
    return Market(engine, tokens, price, specs, skewed, factor)


def usdc_weth_engine(*, skew: Fraction = Fraction(1), v3_hydrated: bool = True) -> ArenaEngine:
    """A fixed market. Pools 0 and 1: V2 USDC/WETH at 3000 USDC per WETH (pool 1 half as
    deep, its USDC reserve × `skew`); pool 2: V3 0.05 % at the same price, one position
    of ±600 ticks (given its tick map only when `v3_hydrated`)."""
    specs = [
        PoolSpec(0, PoolKind.V2, USDC, WETH, 3000),
        PoolSpec(1, PoolKind.V2, USDC, WETH, 3000),
        PoolSpec(2, PoolKind.V3, USDC, WETH, 500, 10),
    ]
    engine = ArenaEngine()
    engine.add_pools([whitelisted(s) for s in specs])
    engine.set_reserves(0, R_USDC, R_WETH)
    engine.set_reserves(1, int(R_USDC // 2 * skew), R_WETH // 2)
    sqrt_price = sqrt_price_x96_of(Fraction(R_WETH, R_USDC))
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    positions = [(tick // 10 * 10 - 600, tick // 10 * 10 + 600, 10**17)]
    ticks = tick_map(positions) if v3_hydrated else None
    engine.set_slot0(2, sqrt_price, 10**17, tick, ticks=ticks)
    return engine


def whitelist_document(engine: ArenaEngine, chain: str = "ethereum") -> dict[str, Any]:
    """The engine's pools as a `whitelist.pools.{chain}.full` document."""

    def token(t: Token) -> dict[str, Any]:
        return {"address": "0x" + t.address.hex(), "decimals": t.decimals, "symbol": t.symbol}

    pools = []
    for pool in engine.registry.pools:
        entry: dict[str, Any] = {
            "address": "0x" + pool.address.hex(),
            "protocol": PROTOCOL_SHORT[pool.protocol],
            "token0": token(pool.token0),
            "token1": token(pool.token1),
        }
        if pool.fee is not None:
            entry["fee"] = pool.fee
        if pool.tick_spacing is not None:
            entry["tick_spacing"] = pool.tick_spacing
        pools.append(entry)
    return {"chain": chain, "snapshot_id": 1, "pools": pools}
