"""Our exact V4 quotes against the real PoolManager, swap by swap, to the wei.

Seeded random exact-input swaps go through v4-core's `PoolSwapTest` router in real mined
blocks, both directions, from a few wei to amounts that cross several initialized ticks
(dense narrow positions are added first), some with a sqrtPriceLimit. Before every block
the V4 pools are hydrated through StateView; each swap is quoted against the state right
before it (the hydrated one for a pool's first swap of the block, then the state our
previous quote left). The PoolManager's Swap event (both deltas, price, liquidity, tick,
fee) and the tokens the trader paid and received must equal `v3_swap.swap`; a pool's
first swap of a block must also equal the pathfinder's `ExactQuoter` over an arena
hydrated through `extsload`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import pytest
from eth_utils.crypto import keccak

from arena.engine import ArenaEngine
from arena.resync import hydrate_indices
from arena.v4_hydration import V4Pool as V4Locator
from arena.v4_hydration import hydrate_v4_pools
from devchain import TxRequest, execute_block
from devchain.rpc import block_number, nonce_at
from devchain.spec import clamp_range
from devchain.v4_world import V4Deployment, V4Pool, modify_call, swap_call
from devchain.whitelist_file import v4_pool_entry
from exex_bridge.producers.log_decoding import V4_SWAP
from exex_bridge.whitelist import PoolJson, parse_pool
from pathfinder.exact_quote import ExactQuoter
from pathfinder.tick_math import get_sqrt_ratio_at_tick
from pathfinder.tick_table import TickTable
from pathfinder.v3_swap import SwapResult, V3SwapState, swap
from tests.chain.conftest import V4DevChain

pytestmark = pytest.mark.chain

SEED: Final = 0x5EED_0004
BLOCKS: Final = 10
SWAPS_PER_BLOCK: Final = 22
DENSE_POSITIONS_PER_POOL: Final = 20
LIMIT_PROBABILITY: Final = 0.25
Q96: Final = 1 << 96
TRANSFER: Final = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


@dataclass
class Planned:
    pool: V4Pool
    zero_for_one: bool
    amount_in: int
    limit: int | None
    quote: SwapResult


@dataclass
class Tally:
    swaps: int = 0
    zero_for_one: int = 0
    limited: int = 0
    limit_reached: int = 0
    crossing: int = 0
    quoter_checked: int = 0
    mismatches: list[str] = field(default_factory=list)


def _hookless(v4: V4Deployment) -> list[V4Pool]:
    return [p for p in v4.pools if int(p.hooks, 16) == 0]


def _states(chain: V4DevChain, block: int) -> dict[bytes, tuple[V3SwapState, TickTable]]:
    pools = _hookless(chain.v4)
    manager = bytes.fromhex(chain.v4.pool_manager[2:])
    locators = [
        V4Locator(pool_id=p.pool_id, pool_manager=manager, tick_spacing=p.tick_spacing)
        for p in pools
    ]
    snaps = hydrate_v4_pools(chain.w3, locators, block, state_view=chain.v4.state_view)
    out = {}
    for pool, snap in zip(pools, snaps, strict=True):
        assert snap.protocol_fee == 0 and snap.lp_fee == pool.fee
        state = V3SwapState(
            sqrt_price_x96=snap.sqrt_price_x96,
            tick=snap.tick,
            liquidity=snap.liquidity,
            fee_pips=pool.fee,
            tick_spacing=pool.tick_spacing,
        )
        out[pool.pool_id] = (state, TickTable.from_net_gross(snap.ticks, pool.tick_spacing))
    return out


def _add_dense_positions(chain: V4DevChain, rng: random.Random) -> None:
    d, v4 = chain.deployment, chain.v4
    states = _states(chain, block_number(chain.w3))
    nonce = nonce_at(chain.w3, d.deployer)
    txs = []
    for pool in _hookless(v4):
        state, _ = states[pool.pool_id]
        spacing = pool.tick_spacing
        for _ in range(DENSE_POSITIONS_PER_POOL):
            lower = (state.tick // spacing + rng.randint(-30, 25)) * spacing
            lower, upper = clamp_range(lower, lower + rng.randint(1, 10) * spacing, spacing)
            liquidity = max(1, int(state.liquidity * 10 ** rng.uniform(-4, -1)))
            salt = rng.getrandbits(256).to_bytes(32, "big")
            txs.append(
                TxRequest(
                    sender=d.deployer,
                    to=v4.liquidity_router,
                    data=modify_call(pool, lower, upper, liquidity, salt),
                    gas=1_500_000,
                    nonce=nonce + len(txs),
                    label=f"dense {pool.label}",
                )
            )
    execute_block(chain.w3, txs)


def _amount(rng: random.Random, state: V3SwapState, zero_for_one: bool) -> int:
    """From a few wei to a fifth of the in-range virtual reserve of the input token."""
    reserve = (
        state.liquidity * Q96 // state.sqrt_price_x96
        if zero_for_one
        else state.liquidity * state.sqrt_price_x96 // Q96
    )
    if rng.random() < 0.05:
        return rng.randint(1, 1000)
    return max(1, int(reserve * 10 ** rng.uniform(-6, -0.5)))


def _limit(rng: random.Random, state: V3SwapState, zero_for_one: bool) -> int:
    steps = rng.randint(1, 4 * state.tick_spacing)
    tick = state.tick - steps if zero_for_one else state.tick + steps + 1
    return get_sqrt_ratio_at_tick(tick)


def _plan_block(
    rng: random.Random, chain: V4DevChain, states: dict[bytes, tuple[V3SwapState, TickTable]]
) -> list[Planned]:
    pools = _hookless(chain.v4)
    current = {pid: state for pid, (state, _) in states.items()}
    planned = []
    for _ in range(SWAPS_PER_BLOCK):
        pool = rng.choice(pools)
        state = current[pool.pool_id]
        zero_for_one = rng.random() < 0.5
        amount = _amount(rng, state, zero_for_one)
        limit = _limit(rng, state, zero_for_one) if rng.random() < LIMIT_PROBABILITY else None
        quote = swap(state, states[pool.pool_id][1], zero_for_one, amount, limit)
        current[pool.pool_id] = V3SwapState(
            sqrt_price_x96=quote.sqrt_price_x96,
            tick=quote.tick,
            liquidity=quote.liquidity,
            fee_pips=state.fee_pips,
            tick_spacing=state.tick_spacing,
        )
        planned.append(Planned(pool, zero_for_one, amount, limit, quote))
    return planned


def _word(data: bytes, i: int) -> int:
    return int.from_bytes(data[32 * i : 32 * i + 32], "big", signed=True)


def _transfers(receipt: dict[str, Any], token: str) -> list[tuple[str, str, int]]:
    out = []
    for log in receipt["logs"]:
        if str(log["address"]).lower() == token.lower() and log["topics"][0] == TRANSFER:
            data = bytes.fromhex(str(log["data"])[2:])
            frm, to = ("0x" + str(t)[-40:] for t in log["topics"][1:3])
            out.append((frm, to, int.from_bytes(data, "big")))
    return out


def _check(chain: V4DevChain, plan: Planned, receipt: dict[str, Any], tally: Tally) -> None:
    (event,) = [log for log in receipt["logs"] if log["topics"][0] == "0x" + V4_SWAP.hex()]
    assert bytes.fromhex(str(event["topics"][1])[2:]) == plan.pool.pool_id
    data = bytes.fromhex(str(event["data"])[2:])
    q = plan.quote
    got = tuple(_word(data, i) for i in range(6))
    want = (-q.amount0, -q.amount1, q.sqrt_price_x96, q.liquidity, q.tick, plan.pool.fee)
    trader, manager = chain.deployment.trader.lower(), chain.v4.pool_manager.lower()
    token_in, token_out = (
        (plan.pool.token0, plan.pool.token1)
        if plan.zero_for_one
        else (plan.pool.token1, plan.pool.token0)
    )
    paid_in = sum(
        v for f, t, v in _transfers(receipt, token_in.address) if (f, t) == (trader, manager)
    )
    received = sum(
        v for f, t, v in _transfers(receipt, token_out.address) if (f, t) == (manager, trader)
    )
    amount_in, amount_out = (
        (q.amount0, -q.amount1) if plan.zero_for_one else (q.amount1, -q.amount0)
    )
    if got != want or (paid_in, received) != (amount_in, amount_out):
        tally.mismatches.append(
            f"{plan.pool.label} z={plan.zero_for_one} in={plan.amount_in} limit={plan.limit}: "
            f"event {got} want {want}; paid {paid_in} got {received} want {amount_in} {amount_out}"
        )
    tally.swaps += 1
    tally.zero_for_one += plan.zero_for_one
    tally.limited += plan.limit is not None
    tally.limit_reached += plan.limit is not None and q.sqrt_price_x96 == plan.limit
    tally.crossing += q.ticks_crossed >= 1


def _check_quoter(
    chain: V4DevChain, engine: ArenaEngine, block: int, plans: list[Planned], tally: Tally
) -> None:
    """The pathfinder's quote of each pool's first swap, over the arena's state."""
    hydrate_indices(engine, chain.w3, range(len(engine.registry)), block)
    quoter = ExactQuoter(engine)
    seen: set[bytes] = set()
    for plan in plans:
        first = plan.pool.pool_id not in seen
        seen.add(plan.pool.pool_id)
        if not first or plan.limit is not None:
            continue
        index = engine.registry.index_of[plan.pool.pool_id]
        out = quoter.hop_out(index, plan.zero_for_one, plan.amount_in)
        expected = -(plan.quote.amount1 if plan.zero_for_one else plan.quote.amount0)
        assert out == expected, plan
        tally.quoter_checked += 1


def test_random_v4_swaps_equal_our_quotes_to_the_wei(clean_v4_devchain: V4DevChain) -> None:
    chain = clean_v4_devchain
    rng = random.Random(SEED)
    _add_dense_positions(chain, rng)
    engine = ArenaEngine(capacity=16)
    engine.add_pools(
        parse_pool(msgspec.convert(v4_pool_entry(p, chain.v4), PoolJson), "v4")
        for p in _hookless(chain.v4)
    )
    tally = Tally()
    for _ in range(BLOCKS):
        tip = block_number(chain.w3)
        plans = _plan_block(rng, chain, _states(chain, tip))
        _check_quoter(chain, engine, tip, plans, tally)
        nonce = nonce_at(chain.w3, chain.deployment.trader)
        txs = [
            TxRequest(
                sender=chain.deployment.trader,
                to=chain.v4.swap_router,
                data=swap_call(p.pool, p.zero_for_one, p.amount_in, p.limit or 0),
                gas=3_000_000,
                nonce=nonce + n,
                label=f"v4 swap {p.pool.label}",
            )
            for n, p in enumerate(plans)
        ]
        _, mined = execute_block(chain.w3, txs)
        for plan, receipt in zip(plans, mined, strict=True):
            _check(chain, plan, receipt, tally)
    print(tally)  # kept by pytest on failure
    assert tally.mismatches == []
    assert tally.swaps >= 200
    # Not vacuous: both directions, crossings, price limits reached, the quoter checked.
    assert 60 < tally.zero_for_one < tally.swaps - 60
    assert tally.crossing > 30 and tally.limited > 20 and tally.limit_reached > 5
    assert tally.quoter_checked >= BLOCKS
