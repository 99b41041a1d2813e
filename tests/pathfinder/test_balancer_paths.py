"""Cycles through Balancer weighted pools: the screen never overstates, the recalculator
finds and prices them with exact integer math.

A market is a real `ArenaEngine` with a Uniswap V2 USDC/WETH pair and a Balancer
weighted pool (either generation, any weights, 2..3 coins) holding WETH and USDC, its
balances hydrated into the engine's multi-coin store.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from arena.coin_pools import CoinPoolState, WeightedParams
from arena.engine import ArenaEngine
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.balancer_hops import balancer_mobius, overstatement_bound
from pathfinder.balancer_weighted import weighted_math_of
from pathfinder.cycle_graph import CycleGraph
from pathfinder.exact_quote import ExactQuoter
from pathfinder.hop_params import HopParams
from pathfinder.recalculator import PathfinderConfig, PathRecalculator
from pathfinder.screen import screen
from pathfinder.v2_math import get_amount_out
from tests.pathfinder.strategies import R_USDC, R_WETH, USDC, WETH
from tests.pathfinder.test_recalculator import check_consistent, settle

DAI = Token(address=bytes.fromhex("6b175474e89094c44da98b954eedeac495271d0f"), decimals=18)
POOL_ID = bytes.fromhex("b0" * 20) + bytes(12)


@st.composite
def weighted_states(draw: st.DrawFn) -> CoinPoolState:
    """WETH, USDC (and maybe DAI) with WETH priced `skew` × 3000 USDC."""
    three = draw(st.booleans())
    w_weth = draw(st.integers(5, 90)) if not three else draw(st.integers(5, 60))
    w_usdc = 100 - w_weth if not three else draw(st.integers(5, 95 - w_weth))
    weights = [w_weth, w_usdc] + ([100 - w_weth - w_usdc] if three else [])
    skew = Fraction(draw(st.integers(800, 1200)), 1000)
    depth = draw(st.integers(1, 10**4))  # pool value in units of 1e15 wei of WETH
    weth = depth * 10**15 * w_weth // 10
    # spot price USDC per WETH = (b_usdc / w_usdc) / (b_weth / w_weth) = 3000 · skew
    usdc = int(Fraction(weth, w_weth) * w_usdc * 3000 * skew / 10**12)
    coins = [WETH.address, USDC.address] + ([DAI.address] if three else [])
    balances = [weth, max(usdc, 10**6)] + ([weth * 3000 * weights[2] // w_weth] if three else [])
    decimals = [18, 6, 18][: len(coins)]
    return CoinPoolState(
        coins=tuple(coins),
        balances=tuple(balances),
        params=WeightedParams(
            weights=tuple(w * 10**16 for w in weights),
            scaling_factors=tuple(10**18 * 10 ** (18 - d) for d in decimals),
            swap_fee=draw(st.integers(10**12, 10**17)),
            version=draw(st.sampled_from([1, 2])),
        ),
    )


def market(state: CoinPoolState) -> ArenaEngine:
    engine = ArenaEngine()
    v2_key = bytes([0xA0, 0]) + bytes(18)
    engine.add_pools(
        [
            WhitelistedPool(
                key=v2_key, address=v2_key, protocol=m.Protocol.UNISWAP_V2, token0=USDC, token1=WETH
            ),
            WhitelistedPool(
                key=POOL_ID,
                address=POOL_ID[:20],
                protocol=m.Protocol.BALANCER_V2_WEIGHTED,
                token0=USDC,
                token1=WETH,
            ),
        ]
    )
    engine.set_reserves(0, R_USDC, R_WETH)
    engine.set_coin_state(1, state)
    return engine


@settings(max_examples=300, deadline=None)
@given(state=weighted_states(), data=st.data())
def test_the_screen_form_never_pays_more_than_the_pool(
    state: CoinPoolState, data: st.DataObject
) -> None:
    n = len(state.coins)
    i, j = data.draw(st.permutations(range(n)))[:2]
    hop = balancer_mobius(state, i, j)
    assert hop is not None
    x = data.draw(st.integers(1, max(1, int(hop.cap))))
    assume(x <= hop.cap)
    assert isinstance(state.params, WeightedParams)
    exact = weighted_math_of(state.params).amount_out(state.balances, i, j, x)
    screened = hop.k * x / (hop.m + hop.n * x)
    assert screened <= exact + overstatement_bound(hop, state.balances[j])


@settings(max_examples=150, deadline=None)
@given(state=weighted_states())
def test_screened_cycle_profit_never_exceeds_the_exact_profit(state: CoinPoolState) -> None:
    engine = market(state)
    graph = CycleGraph([WETH.address])
    graph.add_pools(
        [(i, p.token0.address, p.token1.address) for i, p in enumerate(engine.registry.pools)]
    )
    graph.compact()
    params = HopParams()
    params.refresh(engine, np.arange(2))
    result = screen(graph, params, graph.cycles_of([1]))
    assert len(result.cycles) == 2  # WETH→USDC→WETH both ways round
    quoter = ExactQuoter(engine)
    for cycle, x, profit in zip(
        result.cycles.tolist(), result.amount_in.tolist(), result.profit.tolist(), strict=True
    ):
        if profit <= 0:
            continue
        path = graph.path(cycle)
        exact = quoter.cycle_out(path, int(x)) - int(x)
        # the Balancer hop may overstate by its bound; the V2 hop's rounding is one wei
        first = path[0][0] == 1
        zero_for_one = path[0][1] if first else path[1][1]
        token_in, token_out = (USDC, WETH) if zero_for_one else (WETH, USDC)
        i, j = state.coin_index(token_in.address), state.coin_index(token_out.address)
        assert i is not None and j is not None
        hop = balancer_mobius(state, i, j)
        assert hop is not None
        # a USDC overstatement (Balancer hop first) is worth at most its V2 price in WETH
        worth = R_WETH / R_USDC if first else 1.0
        # the V2 hop before it floors its output: one raw USDC less in, at the spot rate
        floored = 0.0 if first else hop.k / hop.m
        bound = overstatement_bound(hop, state.balances[j]) * worth + floored + 2
        assert profit <= exact + bound


def test_the_recalculator_finds_and_prices_a_cycle_through_a_balancer_pool() -> None:
    """An 80/20 WETH/USDC pool of the later generation prices WETH 3 % above the V2 pair:
    buy WETH on V2, sell it to the Balancer pool — exact, verified hop by hop."""
    weth = 500 * 10**18
    usdc = int(Fraction(weth, 80) * 20 * 3000 * Fraction(103, 100) / 10**12)
    state = CoinPoolState(
        coins=(WETH.address, USDC.address),
        balances=(weth, usdc),
        params=WeightedParams(
            weights=(80 * 10**16, 20 * 10**16),
            scaling_factors=(10**18, 10**30),
            swap_fee=10**15,
            version=2,
        ),
    )
    engine = market(state)
    recalculator = PathRecalculator(engine, PathfinderConfig(chain="testnet"))
    found = recalculator.on_settled(settle(engine, 99, base_fee=0))
    assert found
    best = found[0]
    assert engine.registry.pools[1].key_hex in best.pools
    check_consistent(engine, best)
    # WETH → USDC on the Balancer pool (which overvalues WETH), USDC → WETH on V2
    assert best.pools == (engine.registry.pools[1].key_hex, engine.registry.pools[0].key_hex)
    assert best.zero_for_one == (False, True)
    # the pool's own math gives the first hop's output
    usdc_out = weighted_math_of(state.params).amount_out(state.balances, 0, 1, best.amount_in)
    assert ExactQuoter(engine).hop_out(1, False, best.amount_in) == usdc_out
    assert best.net_profit > 10**16  # more than 0.01 WETH at 3 % on a 500 WETH pool


def test_cycles_use_every_coin_pair_of_a_three_coin_balancer_pool() -> None:
    """A WETH/USDC/DAI weighted pool listed as USDC/WETH holds twice the DAI it would at
    balance against WETH: DAI is cheap there on a pair that is not the whitelisted one.
    The recalculator gives the pool's other pairs their own edges and finds WETH → DAI on
    the Balancer pool, DAI → WETH on a V2 pair, each hop priced by the pool's own math."""
    weth_balance = 1_000 * 10**18
    state = CoinPoolState(
        coins=(WETH.address, USDC.address, DAI.address),
        balances=(weth_balance, 3_000_000 * 10**6, 2 * 3_000_000 * 10**18),
        params=WeightedParams(
            weights=(34 * 10**16, 33 * 10**16, 33 * 10**16),
            scaling_factors=(10**18, 10**30, 10**18),
            swap_fee=10**15,
            version=1,
        ),
    )
    engine = market(state)
    dai_key = bytes([0xA0, 1]) + bytes(18)
    (dai_weth,) = engine.add_pools(
        [
            WhitelistedPool(
                key=dai_key,
                address=dai_key,
                protocol=m.Protocol.UNISWAP_V2,
                token0=DAI,
                token1=WETH,
            )
        ]
    )
    engine.set_reserves(dai_weth, 3_000_000 * 10**18, 1_000 * 10**18)
    recalculator = PathRecalculator(engine, PathfinderConfig(chain="testnet"))
    assert len(recalculator.pair_edges) == 2  # WETH/DAI and USDC/DAI beside USDC/WETH
    found = recalculator.on_settled(settle(engine, 5, base_fee=0))
    weth, dai = "0x" + WETH.address.hex(), "0x" + DAI.address.hex()
    through = [o for o in found if o.tokens == (weth, dai, weth)]
    assert through, found
    best = through[0]
    assert best.pools == (engine.registry.pools[1].key_hex, engine.registry.pools[dai_weth].key_hex)
    assert isinstance(state.params, WeightedParams)
    dai_out = weighted_math_of(state.params).amount_out(state.balances, 0, 2, best.amount_in)
    r_dai, r_weth = engine.table.reserves(dai_weth)
    assert best.expected_out == get_amount_out(dai_out, r_dai, r_weth, 30)
    assert best.profit == best.expected_out - best.amount_in > 0
