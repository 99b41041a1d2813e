"""A synthetic, price-consistent market for the pathfinder benchmarks, and its blocks.

Tokens: WETH and USDC as hubs plus `tokens` others, each with a fair value (WETH wei per
raw unit). Every token has pools with WETH (popular tokens several), most have one with
USDC, and the remaining pools pair tokens drawn by popularity, so the 2/3-hop cycles
through the hubs number like on mainnet. A pool is V2 (0.3 %) or V3 (0.05/0.3/1 %: a
full-range position plus a few narrow ones). Every price sits within a few bps of fair,
so few cycles are profitable. A block's updates re-price pools (mostly within a few bps
of fair, some tens of bps off: the arbitrages) and mint or burn a few V3 positions.

A hot stream (`BlockStream.move_bps` > 0) adds a market-wide move to every block: one
token's fair value jumps by `move_bps`, and a share of the block's updates re-price the
pools of that token (largest first) to the new value while its other pools lag, so
dozens of cycles through the token turn profitable in the same block.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

from arena.engine import ArenaEngine
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.tick_math import MAX_TICK, MIN_TICK, get_tick_at_sqrt_ratio

Q96: Final = 1 << 96
WETH_USD: Final = 2000.0
V3_FEES: Final = ((500, 10), (3000, 60), (10000, 200))
FIRST_BLOCK: Final = 20_000_000
BASE_FEE: Final = 20 * 10**9


@dataclass
class SimPool:
    """The generator's own copy of one pool's state (what the stream tells the arena)."""

    index: int
    token0: int
    token1: int
    fee: int  # pips
    spacing: int  # 0 for V2
    depth_wei: float
    reserve0: int = 0
    reserve1: int = 0
    sqrt_price_x96: int = 0
    tick: int = 0
    liquidity: int = 0
    ticks: dict[int, list[int]] = field(default_factory=dict)
    own: list[tuple[int, int, int]] = field(default_factory=list)  # minted (lower, upper, L)

    @property
    def v2(self) -> bool:
        return self.spacing == 0

    def add_position(self, lower: int, upper: int, amount: int) -> None:
        for tick, net in ((lower, amount), (upper, -amount)):
            entry = self.ticks.setdefault(tick, [0, 0])
            entry[0] += net
            entry[1] += abs(amount)
            if entry[1] == 0:
                del self.ticks[tick]
        if lower <= self.tick < upper:
            self.liquidity += amount

    def active_liquidity(self) -> int:
        return sum(v[0] for t, v in self.ticks.items() if t <= self.tick)


@dataclass
class Market:
    weth: bytes
    usdc: bytes
    tokens: list[Token]
    value: list[float]  # WETH wei per raw unit, per token
    weight: list[float]  # popularity
    pools: list[SimPool]
    whitelist: list[WhitelistedPool]
    rng: random.Random

    def fair_price(self, pool: SimPool) -> float:
        """Raw token1 per raw token0."""
        return self.value[pool.token0] / self.value[pool.token1]


def _address(rng: random.Random) -> bytes:
    return rng.randbytes(20)


def _tokens(rng: random.Random, count: int) -> tuple[list[Token], list[float], list[float]]:
    weth = Token(address=_address(rng), decimals=18, symbol="WETH")
    usdc = Token(address=_address(rng), decimals=6, symbol="USDC")
    tokens, values, weights = [weth, usdc], [1.0, 1e18 / (WETH_USD * 1e6)], [0.0, 0.0]
    for i in range(count):
        tokens.append(Token(address=_address(rng), decimals=18, symbol=f"T{i}"))
        values.append(10 ** rng.uniform(-3, 4) / WETH_USD)
        weights.append(1.0 / (i + 20))  # Zipf-like popularity by rank
    return tokens, values, weights


def _pairs(rng: random.Random, weights: list[float], pools: int) -> list[tuple[int, int]]:
    """Token index pairs: hub pools first, then popularity-weighted pairs of others."""
    pairs = [(0, 1)] * 4
    others = range(2, len(weights))
    top = max(weights)
    for t in others:
        share = weights[t] / top  # 1 for the most popular token
        pairs += [(0, t)] * (1 + int(5 * share**0.5 * rng.random() + rng.random() * 1.3))
        pairs += [(1, t)] * int(rng.random() * 1.2 + 2.5 * share**0.5)
    chosen = rng.choices(list(others), [weights[t] for t in others], k=3 * pools)
    pick = iter(chosen)
    while len(pairs) < pools:
        a, b = next(pick), next(pick)
        if a != b:
            pairs.append((a, b))
    return pairs[:pools]


def _full_range(spacing: int) -> tuple[int, int]:
    return -(-MIN_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing


def _seed_v3(pool: SimPool, price: float, rng: random.Random, value0: float, value1: float) -> None:
    pool.sqrt_price_x96 = int(math.sqrt(price) * Q96)
    pool.tick = get_tick_at_sqrt_ratio(pool.sqrt_price_x96)
    half = pool.depth_wei / 2
    full = int(math.sqrt((half / value0) * (half / value1)))
    pool.add_position(*_full_range(pool.spacing), max(full, 1))
    for _ in range(rng.randint(2, 8)):
        lower = (pool.tick // pool.spacing - rng.randint(0, 40)) * pool.spacing
        upper = lower + rng.randint(1, 60) * pool.spacing
        pool.add_position(lower, upper, max(1, int(full * rng.lognormvariate(-1, 1.5))))


def _seed_v2(pool: SimPool, price: float, value0: float) -> None:
    pool.reserve0 = max(10**6, int(pool.depth_wei / 2 / value0))
    pool.reserve1 = max(10**6, int(pool.reserve0 * price))


def build_market(pools: int, tokens: int, seed: int = 7, noise_bps: float = 3.0) -> Market:
    rng = random.Random(seed)
    token_list, values, weights = _tokens(rng, tokens)
    market = Market(
        token_list[0].address, token_list[1].address, token_list, values, weights, [], [], rng
    )
    for index, (a, b) in enumerate(_pairs(rng, weights, pools)):
        t0, t1 = (a, b) if token_list[a].address < token_list[b].address else (b, a)
        v3 = rng.random() < 0.6
        fee, spacing = rng.choice(V3_FEES) if v3 else (3000, 0)
        # The WETH/USDC pools are the deepest and, weighted by depth, the busiest.
        low, high = (8.0, 8.5) if {a, b} == {0, 1} else (4.0, 8.0)
        depth = 10 ** rng.uniform(low, high) / WETH_USD * 1e18
        pool = SimPool(index, t0, t1, fee, spacing, depth)
        price = market.fair_price(pool) * (1 + rng.gauss(0, noise_bps) / 1e4)
        if v3:
            _seed_v3(pool, price, rng, values[t0], values[t1])
        else:
            _seed_v2(pool, price, values[t0])
        market.pools.append(pool)
        protocol = m.Protocol.UNISWAP_V3 if v3 else m.Protocol.UNISWAP_V2
        address = _address(rng)
        market.whitelist.append(
            WhitelistedPool(
                key=address,
                address=address,
                protocol=protocol,
                token0=token_list[t0],
                token1=token_list[t1],
                fee=fee,
                tick_spacing=spacing or None,
            )
        )
    return market


def load_engine(market: Market, *, ring_depth: int = 128) -> ArenaEngine:
    """An engine holding the whole market as hydrated state at FIRST_BLOCK - 1."""
    engine = ArenaEngine(ring_depth=ring_depth, capacity=len(market.pools))
    engine.add_pools(market.whitelist)
    for pool in market.pools:
        if pool.v2:
            engine.set_reserves(pool.index, pool.reserve0, pool.reserve1)
        else:
            ticks = {t: (v[0], v[1]) for t, v in pool.ticks.items()}
            engine.set_slot0(pool.index, pool.sqrt_price_x96, pool.liquidity, pool.tick, ticks)
    engine.mark_synced(FIRST_BLOCK - 1, keep_history=False)
    engine.take_changed()
    return engine


@dataclass
class BlockStream:
    """Blocks of `updates` pool updates; `far_share` of the re-pricings land `far_bps` off
    fair (those make the arbitrages), the rest within `near_bps`."""

    market: Market
    updates: int = 200
    near_bps: float = 3.0
    far_bps: float = 40.0
    far_share: float = 0.05
    liquidity_share: float = 0.05
    move_bps: float = 0.0  # > 0: a market-wide move of one token in every block
    move_share: float = 0.5  # share of the updates that re-price the moved token's pools
    block: int = FIRST_BLOCK
    _hot: list[float] = field(default_factory=list)
    _pools_of: dict[int, list[SimPool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._hot = [math.sqrt(p.depth_wei) for p in self.market.pools]
        for pool in self.market.pools:
            for token in (pool.token0, pool.token1):
                self._pools_of.setdefault(token, []).append(pool)
        for pools in self._pools_of.values():
            pools.sort(key=lambda p: -p.depth_wei)

    def _moved_pools(self, rng: random.Random) -> list[SimPool]:
        """Move one token's fair value; its deepest pools, to be re-priced first."""
        if self.move_bps <= 0:
            return []
        market = self.market
        # A token with pools on both hubs, by popularity (the hubs themselves stay put).
        while True:
            token = rng.choices(range(2, len(market.value)), market.weight[2:])[0]
            if len(self._pools_of.get(token, ())) >= 8:
                break
        sign = 1 if rng.random() < 0.5 else -1
        market.value[token] *= 1 + sign * self.move_bps / 1e4
        wanted = int(self.updates * self.move_share)
        return self._pools_of[token][:wanted]

    def next_block(self) -> tuple[m.BeginBlock, list[m.PoolUpdateMessage]]:
        rng = self.market.rng
        number = self.block
        self.block += 1
        stamp = 1_700_000_000 + 12 * (number - FIRST_BLOCK)
        begin = m.BeginBlock(
            stream_seq=0,
            block_number=number,
            block_timestamp=stamp,
            base_fee_per_gas=BASE_FEE,
            is_revert=False,
        )
        events = []
        moved = self._moved_pools(rng)
        near = {pool.index for pool in moved}
        others = rng.choices(self.market.pools, self._hot, k=self.updates - len(moved))
        for log_index, pool in enumerate(moved + others):
            update_type, payload = self._update(pool, rng, near=pool.index in near)
            events.append(
                m.PoolUpdateMessage(
                    pool_id=m.PoolAddress(value=self.market.whitelist[pool.index].key),
                    protocol=self.market.whitelist[pool.index].protocol,
                    update_type=update_type,
                    block_number=number,
                    block_timestamp=stamp,
                    tx_index=log_index // 2,
                    log_index=log_index,
                    is_revert=False,
                    update=payload,
                )
            )
        return begin, events

    def _update(
        self, pool: SimPool, rng: random.Random, *, near: bool = False
    ) -> tuple[m.UpdateType, m.PoolUpdatePayload]:
        if not near and not pool.v2 and rng.random() < self.liquidity_share:
            return self._liquidity(pool, rng)
        far = not near and rng.random() < self.far_share
        price = self.market.fair_price(pool) * (
            1 + rng.gauss(0, self.far_bps if far else self.near_bps) / 1e4
        )
        if pool.v2:
            k = pool.reserve0 * pool.reserve1
            pool.reserve0 = max(1000, math.isqrt(int(k / price)))
            pool.reserve1 = max(1000, int(pool.reserve0 * price))
            return m.UpdateType.SWAP, m.V2Sync(reserve0=pool.reserve0, reserve1=pool.reserve1)
        pool.sqrt_price_x96 = int(math.sqrt(price) * Q96)
        pool.tick = get_tick_at_sqrt_ratio(pool.sqrt_price_x96)
        pool.liquidity = pool.active_liquidity()
        return m.UpdateType.SWAP, m.V3Swap(
            sqrt_price_x96=pool.sqrt_price_x96, liquidity=pool.liquidity, tick=pool.tick
        )

    def _liquidity(self, pool: SimPool, rng: random.Random) -> tuple[m.UpdateType, m.V3Liquidity]:
        if pool.own and rng.random() < 0.5:
            lower, upper, amount = pool.own.pop(rng.randrange(len(pool.own)))
            pool.add_position(lower, upper, -amount)
            return m.UpdateType.BURN, m.V3Liquidity(
                tick_lower=lower, tick_upper=upper, liquidity_delta=-amount
            )
        lower = (pool.tick // pool.spacing - rng.randint(0, 10)) * pool.spacing
        upper = lower + rng.randint(1, 20) * pool.spacing
        amount = max(1, int(max(pool.liquidity, 1) * rng.uniform(0.01, 0.5)))
        pool.add_position(lower, upper, amount)
        pool.own.append((lower, upper, amount))
        return m.UpdateType.MINT, m.V3Liquidity(
            tick_lower=lower, tick_upper=upper, liquidity_delta=amount
        )
