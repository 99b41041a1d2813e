"""Curve StableSwap-NG pools as hops: the screen never overstates, cycles through them
are found and verified with the pool's exact math.

- One hop: the screen's map `K·x/(1 + N·x)` is at or below the pool's exact output for
  every input up to the cap whose promised output is beyond dust (`curve_hop`'s
  ROUNDING_UNITS / ROUNDING_MARGIN units) (hypothesis, over random plain pools).
- A cycle WETH → USDC (V2) → USDT (Curve) → WETH (V2 or V3): the screen's profit
  estimate is never above the exact profit at the screened input (hypothesis).
- The recalculator finds the cycle through the Curve pool of a skewed market and its
  opportunity's output is the hops' exact outputs chained (V2 getAmountOut, the Curve
  pool's `get_dy` at the next block's time, the V3 swap loop).
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt

import numpy as np
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from arena.block_assembler import Settled
from arena.coin_pools import CoinPoolState, CurveParams
from arena.engine import ArenaEngine
from arena.sync_state import SyncState
from exex_bridge.messages import Protocol
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.curve_hop import (
    ROUNDING_MARGIN,
    ROUNDING_UNITS,
    SECONDS_PER_BLOCK,
    CurveRead,
    curve_out,
    screen_row,
)
from pathfinder.curve_stableswap import StableSwapPool, get_dy
from pathfinder.cycle_graph import CycleGraph
from pathfinder.exact_quote import ExactQuoter
from pathfinder.hop_params import HopParams
from pathfinder.opportunity import Opportunity
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.screen import screen
from pathfinder.tick_math import get_tick_at_sqrt_ratio
from pathfinder.v2_math import get_amount_out
from tests.pathfinder.curve_strategies import pools

WETH = Token(
    address=bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"), decimals=18, symbol="WETH"
)
USDC = Token(address=b"\xa0" * 20, decimals=6, symbol="USDC")
USDT = Token(address=b"\xd4" * 20, decimals=6, symbol="USDT")  # above WETH: token1
DAI = Token(address=b"\x6b" * 20, decimals=18, symbol="DAI")
CLOCK = 1_800_000_000
MIN_TICK_FULL, MAX_TICK_FULL = -887_220, 887_220  # spacing 60


@settings(max_examples=300, deadline=None)
@example(  # an imbalanced pool whose invariant's rounding costs hundreds of units of coin 0
    pool=StableSwapPool(
        balances=(446402246 * 10**18 + 3, 1008000006, 1005 * 10**18 + 35),
        rates=(10**18, 10**30, 10**18),
        fee=267,
        offpeg_fee_multiplier=10000000020,
        initial_a=3800,
        future_a=3800,
        initial_a_time=0,
        future_a_time=0,
    ),
    sold=2,
    bought=0,
    amount=29,
)
@example(  # a pool whose curve bends sharply between two of the screen's samples
    pool=StableSwapPool(
        balances=(1000 * 10**6, 41222 * 10**6),
        rates=(10**30, 10**30),
        fee=0,
        offpeg_fee_multiplier=10**10,
        initial_a=16800,
        future_a=16800,
        initial_a_time=0,
        future_a_time=0,
    ),
    sold=0,
    bought=0,
    amount=25846542 * 2,
)
@given(
    pool=pools(),
    sold=st.integers(0, 3),
    bought=st.integers(0, 2),
    amount=st.integers(1, 2**100),
)
def test_the_screen_row_never_promises_more_than_the_pool(
    pool: StableSwapPool, sold: int, bought: int, amount: int
) -> None:
    n = len(pool.balances)
    i = sold % n
    j = bought % (n - 1)
    j = j if j < i else j + 1
    read = CurveRead(pool, i, j, CLOCK)
    row = screen_row(read, True)
    assume(row is not None)
    assert row is not None
    x = min(amount, int(row.cap))  # any input up to the cap, the cap itself included
    promised = row.k * x / (row.m + row.n * x)
    paid = curve_out(read, True, x)
    assume(promised >= ROUNDING_UNITS / ROUNDING_MARGIN)  # beyond dust (see curve_hop)
    assert promised <= paid


# -- a market with a Curve pool ------------------------------------------------------------
def pool_of(
    n: int, protocol: Protocol, token0: Token, token1: Token, **extra: int
) -> WhitelistedPool:
    key = bytes([0xE0, n]) + bytes(18)
    return WhitelistedPool(
        key=key, address=key, protocol=protocol, token0=token0, token1=token1, **extra
    )


def curve_state(usdc: int, usdt: int, dai: int, a: int, fee: int) -> CoinPoolState:
    return CoinPoolState(
        coins=(USDC.address, USDT.address, DAI.address),
        balances=(usdc, usdt, dai),
        params=CurveParams(
            rates=(10**30, 10**30, 10**18),
            fee=fee,
            offpeg_fee_multiplier=20_000_000_000,
            initial_a=a,
            future_a=a,
            initial_a_time=0,
            future_a_time=0,
        ),
    )


def market(usdt_skew: Fraction, a: int, fee: int, *, v3: bool, depth: int = 1) -> ArenaEngine:
    """WETH/USDC V2, a USDC/USDT/DAI Curve pool holding `usdt_skew` times the USDT it
    would at balance (cheap USDT), and WETH/USDT on V2 or V3; 3000 USD per WETH."""
    engine = ArenaEngine(capacity=16)
    third = pool_of(
        2,
        Protocol.UNISWAP_V3 if v3 else Protocol.UNISWAP_V2,
        WETH,
        USDT,
        **({"fee": 500, "tick_spacing": 60} if v3 else {"fee": 500}),
    )
    engine.add_pools(
        [
            pool_of(0, Protocol.UNISWAP_V2, USDC, WETH, fee=500),
            pool_of(1, Protocol.CURVE_STABLE, USDC, USDT),
            third,
        ]
    )
    weth, usd = 1_000 * 10**18 * depth, 3_000_000 * 10**6 * depth
    engine.set_reserves(0, usd, weth)
    base = 10_000_000 * depth
    engine.set_coin_state(
        1, curve_state(base * 10**6, int(base * usdt_skew) * 10**6, base * 10**18, a, fee)
    )
    if v3:  # WETH is token0: price = USDT per WETH (raw units), one full-range position
        sqrt = isqrt(usd * 2**192 // weth)
        liquidity = isqrt(usd * weth)
        tick = get_tick_at_sqrt_ratio(sqrt)
        ticks = {MIN_TICK_FULL: (liquidity, liquidity), MAX_TICK_FULL: (-liquidity, liquidity)}
        engine.set_slot0(2, sqrt, liquidity, tick, ticks)
    else:
        engine.set_reserves(2, weth, usd)
    engine.coins.clock = CLOCK
    engine.mark_synced(1, keep_history=False)
    return engine


def settled(engine: ArenaEngine) -> Settled:
    return Settled(
        block=2,
        base_fee_per_gas=0,
        changed=frozenset(engine.take_changed()),
        after_reorg=False,
        sync=SyncState.SYNCED,
    )


@settings(max_examples=150, deadline=None)
@given(
    skew=st.fractions(Fraction(1, 2), Fraction(2)),
    a=st.integers(1, 5_000).map(lambda a: a * 100),
    fee=st.integers(0, 10**8),
    depth=st.integers(1, 100),
    v3=st.booleans(),
)
def test_the_screened_profit_is_never_above_the_exact_one(
    skew: Fraction, a: int, fee: int, depth: int, v3: bool
) -> None:
    engine = market(skew, a, fee, v3=v3, depth=depth)
    graph = CycleGraph([WETH.address])
    for index, pool in enumerate(engine.registry.pools):
        graph.add_pool(index, pool.token0.address, pool.token1.address)
    graph.compact()
    params = HopParams()
    params.refresh(engine, np.arange(3))
    result = screen(graph, params, graph.cycles_of([1]))
    quoter = ExactQuoter(engine)
    for cycle, amount_in, profit in zip(
        result.cycles.tolist(), result.amount_in.tolist(), result.profit.tolist(), strict=True
    ):
        if profit <= 0:
            continue
        x = int(amount_in)
        exact = quoter.cycle_out(graph.path(cycle), x) - x
        assert profit <= exact


def test_the_recalculator_finds_and_verifies_a_cycle_through_the_curve_pool() -> None:
    for v3 in (False, True):
        engine = market(Fraction(2), a=20 * 100, fee=1_000_000, v3=v3)
        recalculator = PathRecalculator(engine, PathfinderConfig(chain="testnet"))
        found = recalculator.on_settled(settled(engine))
        curve_key = engine.registry.pools[1].key_hex
        through = [o for o in found if curve_key in o.pools]
        assert through, found
        best = through[0]
        weth, usdc, usdt = ("0x" + t.address.hex() for t in (WETH, USDC, USDT))
        assert best.tokens == (weth, usdc, usdt, weth)  # cheap USDT bought on Curve
        # The hops' exact outputs, chained by hand.
        r_usdc, r_weth = engine.table.reserves(0)
        usdc_out = get_amount_out(best.amount_in, r_weth, r_usdc, 5)
        state = engine.coins.state(1)
        assert state is not None
        math_pool = StableSwapPool(state.balances, *_params(state))
        usdt_out = get_dy(math_pool, 0, 1, usdc_out, CLOCK + SECONDS_PER_BLOCK)
        quoter = ExactQuoter(engine)
        zero_for_one_last = engine.registry.pools[2].token0 == USDT
        final = quoter.hop_out(2, zero_for_one_last, usdt_out)
        assert best.expected_out == final
        assert best.profit == final - best.amount_in > 0
        assert best.zero_for_one == (False, True, zero_for_one_last)


def _params(state: CoinPoolState) -> tuple[tuple[int, ...], int, int, int, int, int, int]:
    p = state.params
    assert isinstance(p, CurveParams)
    return (
        p.rates,
        p.fee,
        p.offpeg_fee_multiplier,
        p.initial_a,
        p.future_a,
        p.initial_a_time,
        p.future_a_time,
    )


# -- the other coin pairs of a 3-coin pool ----------------------------------------------------
def three_coin_market(extra_pools: int = 0) -> ArenaEngine:
    """WETH/USDC and WETH/DAI on V2 (0.05 %), and the USDC/USDT/DAI Curve pool (listed as
    USDC/USDT) holding twice the DAI it would at balance: DAI is cheap there, on a pair
    that is not the whitelisted one. `extra_pools` unrelated V2 pools come first."""
    engine = ArenaEngine(capacity=16)
    filler = [
        pool_of(
            0,
            Protocol.UNISWAP_V2,
            Token(address=bytes([1]) + k.to_bytes(19, "big"), decimals=18),
            Token(address=bytes([2]) + k.to_bytes(19, "big"), decimals=18),
        )
        for k in range(extra_pools)
    ]
    filler = [
        WhitelistedPool(
            key=bytes([0xF0]) + k.to_bytes(19, "big"),
            address=bytes([0xF0]) + k.to_bytes(19, "big"),
            protocol=p.protocol,
            token0=p.token0,
            token1=p.token1,
        )
        for k, p in enumerate(filler)
    ]
    indices = engine.add_pools(
        [
            *filler,
            pool_of(0, Protocol.UNISWAP_V2, USDC, WETH, fee=500),
            pool_of(1, Protocol.UNISWAP_V2, DAI, WETH, fee=500),
            pool_of(2, Protocol.CURVE_STABLE, USDC, USDT),
        ]
    )
    for index in indices[: len(filler)]:
        engine.set_reserves(index, 10**24, 10**24)
    usdc_weth, dai_weth, curve = indices[len(filler) :]
    engine.set_reserves(usdc_weth, 3_000_000 * 10**6, 1_000 * 10**18)
    engine.set_reserves(dai_weth, 3_000_000 * 10**18, 1_000 * 10**18)
    base = 10_000_000
    engine.set_coin_state(
        curve, curve_state(base * 10**6, base * 10**6, 2 * base * 10**18, 2_000, 1_000_000)
    )
    engine.coins.clock = CLOCK
    engine.mark_synced(1, keep_history=False)
    return engine


def check_dai_cycle(engine: ArenaEngine, found: list[Opportunity]) -> None:
    usdc_weth, dai_weth, curve = (
        engine.registry.index_of[bytes([0xE0, n]) + bytes(18)] for n in range(3)
    )
    weth, usdc, dai = ("0x" + t.address.hex() for t in (WETH, USDC, DAI))
    through = [o for o in found if o.tokens == (weth, usdc, dai, weth)]
    assert through, found
    best = through[0]
    assert best.pools == tuple(
        engine.registry.pools[i].key_hex for i in (usdc_weth, curve, dai_weth)
    )
    r_usdc, r_weth = engine.table.reserves(usdc_weth)
    usdc_out = get_amount_out(best.amount_in, r_weth, r_usdc, 5)
    state = engine.coins.state(curve)
    assert state is not None
    dai_out = get_dy(
        StableSwapPool(state.balances, *_params(state)), 0, 2, usdc_out, CLOCK + SECONDS_PER_BLOCK
    )
    r_dai, r_weth2 = engine.table.reserves(dai_weth)
    assert best.expected_out == get_amount_out(dai_out, r_dai, r_weth2, 5)
    assert best.profit == best.expected_out - best.amount_in > 0


def test_cycles_use_every_coin_pair_of_a_three_coin_pool() -> None:
    engine = three_coin_market()
    recalculator = PathRecalculator(engine, PathfinderConfig(chain="testnet"))
    assert len(recalculator.pair_edges) == 2  # USDC/DAI and USDT/DAI beside USDC/USDT
    check_dai_cycle(engine, recalculator.on_settled(settled(engine)))


def test_pair_edges_hydrated_later_and_moved_when_the_registry_grows() -> None:
    engine = three_coin_market()
    curve = engine.registry.index_of[bytes([0xE0, 2]) + bytes(18)]
    state = engine.coins.state(curve)
    assert state is not None
    engine.coins.forget(curve)  # not hydrated when the recalculator starts
    recalculator = PathRecalculator(engine, PathfinderConfig(chain="testnet"))
    assert len(recalculator.pair_edges) == 0
    recalculator.on_settled(settled(engine))
    engine.set_coin_state(curve, state)  # hydrated: its pairs join at the next point
    check_dai_cycle(engine, recalculator.on_settled(settled(engine)))
    before = recalculator.pair_edges.base
    more = three_coin_market(extra_pools=before + 10)
    grown = [p for p in more.registry.pools if p.key not in engine.registry.index_of]
    for pool in grown:
        (index,) = engine.add_pools([pool])
        engine.set_reserves(index, 10**24, 10**24)
    assert len(engine.registry) >= before
    engine.set_coin_state(curve, state)
    check_dai_cycle(engine, recalculator.on_settled(settled(engine)))
    assert recalculator.pair_edges.base > len(engine.registry)
    assert all(
        e.edge >= recalculator.pair_edges.base for e in recalculator.pair_edges.of_pool(curve)
    )
