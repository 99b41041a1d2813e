"""Our exact quotes against the real Uniswap contracts, swap by swap, to the wei.

Seeded random exact-input swaps run on anvil in real mined blocks: V2 swaps router-less
(transfer to the pair, then `pair.swap`), V3 swaps through SwapRouter.exactInputSingle;
both directions, amounts from a few wei to ones that sweep several initialized ticks,
some V3 swaps with a sqrtPriceLimit. Dense extra positions are minted first so that
crossings are common. Before every block the pools are hydrated over RPC; each swap is
quoted against the state right before it: the hydrated state for a pool's first swap of
the block, then the state the previous Swap/Sync event of that pool reports.

V3: the pool's Swap event (both amounts, price, liquidity, tick) and the token the trader
received must equal `v3_swap.swap`. V2: the pair must pay exactly `get_amount_out` and
refuse one wei more with 'UniswapV2: K' (so the quote is the pair's maximum output).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import pytest
from eth_utils.crypto import keccak

from arena.hydration import V2PoolSnapshot, V3PoolSnapshot, hydrate_pools
from devchain import TxRequest, execute_block, mine, rpc_call
from devchain.abi import encode_call
from devchain.deploy import DEADLINE, Deployment, Pool
from devchain.rpc import block_number, nonce_at, receipts, send_transactions
from devchain.spec import clamp_range
from pathfinder.tick_math import MAX_SQRT_RATIO, MIN_SQRT_RATIO
from pathfinder.tick_table import TickTable
from pathfinder.v2_math import get_amount_out
from pathfinder.v3_swap import SwapResult, V3SwapState, quote_exact_input, swap
from tests.chain.conftest import DevChain

pytestmark = pytest.mark.chain

SEED: Final = 0x5EED_2024
BLOCKS: Final = 22
SWAPS_PER_BLOCK: Final = 24
EXTRA_POSITIONS_PER_POOL: Final = 24
LIMIT_PROBABILITY: Final = 0.25
V3_SHARE: Final = 0.7
V2_FEE_BPS: Final = 30
Q96: Final = 1 << 96


def _topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


V3_SWAP: Final = _topic("Swap(address,address,int256,int256,uint160,uint128,int24)")
V2_SWAP: Final = _topic("Swap(address,uint256,uint256,uint256,uint256,address)")
V2_SYNC: Final = _topic("Sync(uint112,uint112)")
TRANSFER: Final = _topic("Transfer(address,address,uint256)")

V2State = tuple[int, int]


@dataclass
class PlannedSwap:
    pool: Pool
    zero_for_one: bool
    amount_in: int
    limit: int | None = None  # V3 only
    amount_out: int = 0  # V2 only: the quote sent to pair.swap
    tx: int = 0  # index of the swap transaction in the block
    probe: int | None = None  # V2 only: index of the swap asking one wei more


@dataclass
class Tally:
    v2: int = 0
    v3: int = 0
    zero_for_one: int = 0
    limited: int = 0
    limit_reached: int = 0
    crossed: dict[int, int] = field(default_factory=dict)  # ticks crossed -> swaps
    mismatches: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.v2 + self.v3

    def crossing_at_least(self, n: int) -> int:
        return sum(count for ticks, count in self.crossed.items() if ticks >= n)


# -- chain helpers ------------------------------------------------------------------------
def _signed(word: bytes) -> int:
    return int.from_bytes(word, "big", signed=True)


def _words(log: dict[str, Any]) -> list[bytes]:
    data = bytes.fromhex(str(log["data"])[2:])
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def _logs(receipt: dict[str, Any], address: str, topic: str) -> list[dict[str, Any]]:
    return [
        log
        for log in receipt["logs"]
        if str(log["address"]).lower() == address.lower() and log["topics"][0] == topic
    ]


def _received(receipt: dict[str, Any], token: str, to: str) -> int:
    """Sum of `token` transferred to `to` in the transaction."""
    padded = "0x" + "00" * 12 + to.lower().removeprefix("0x")
    return sum(
        int.from_bytes(_words(log)[0], "big")
        for log in _logs(receipt, token, TRANSFER)
        if str(log["topics"][2]).lower() == padded
    )


def _revert_reason(chain: DevChain, tx_hash: str) -> str:
    trace = rpc_call(chain.w3, "debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
    return str(trace.get("revertReason", trace.get("error", "")))


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return float(low * (high / low) ** rng.random())


def _virtual_reserves(state: V3SwapState) -> tuple[int, int]:
    """In-range virtual reserves (L/√P, L·√P) in raw token units."""
    liquidity, sqrt_price = state.liquidity, state.sqrt_price_x96
    return liquidity * Q96 // sqrt_price, liquidity * sqrt_price // Q96


# -- pool state ---------------------------------------------------------------------------
@dataclass
class Market:
    v2: dict[str, V2State]
    v3: dict[str, V3SwapState]
    tables: dict[str, TickTable]

    def copy(self) -> Market:
        return Market(dict(self.v2), dict(self.v3), self.tables)


def hydrate_market(chain: DevChain, block: int) -> Market:
    pools = chain.deployment.pools
    snapshots = hydrate_pools(chain.w3, [(p.address, p.protocol) for p in pools], block)
    market = Market({}, {}, {})
    for pool, snap in zip(pools, snapshots, strict=True):
        if isinstance(snap, V2PoolSnapshot):
            market.v2[pool.address] = (snap.reserve0, snap.reserve1)
        elif isinstance(snap, V3PoolSnapshot):
            market.v3[pool.address] = V3SwapState(
                sqrt_price_x96=snap.sqrt_price_x96,
                tick=snap.tick,
                liquidity=snap.liquidity,
                fee_pips=pool.fee,
                tick_spacing=snap.tick_spacing,
            )
            market.tables[pool.address] = TickTable.from_net_gross(snap.ticks, snap.tick_spacing)
    return market


def mint_dense_positions(chain: DevChain, rng: random.Random) -> None:
    """Narrow positions of random width near each V3 pool's price: many initialized ticks."""
    d = chain.deployment
    market = hydrate_market(chain, block_number(chain.w3))
    nonce = nonce_at(chain.w3, d.deployer)
    txs: list[TxRequest] = []
    for pool in d.pools_of("v3"):
        state = market.v3[pool.address]
        spacing = pool.tick_spacing or 1
        x, y = _virtual_reserves(state)
        for _ in range(EXTRA_POSITIONS_PER_POOL):
            lower = (state.tick // spacing + rng.randint(-30, 25)) * spacing
            lower, upper = clamp_range(lower, lower + rng.randint(1, 10) * spacing, spacing)
            share = _log_uniform(rng, 1e-4, 1e-2)
            params = (
                pool.token0.address,
                pool.token1.address,
                pool.fee,
                lower,
                upper,
                int(x * share) + 1,
                int(y * share) + 1,
                0,
                0,
                d.deployer,
                DEADLINE,
            )
            txs.append(
                TxRequest(
                    sender=d.deployer,
                    to=d.position_manager,
                    gas=1_000_000,
                    data=encode_call("NonfungiblePositionManager", "mint", params),
                    nonce=nonce + len(txs),
                    label=f"dense {pool.label}",
                )
            )
    for start in range(0, len(txs), 40):
        execute_block(chain.w3, txs[start : start + 40])


# -- building a block ---------------------------------------------------------------------
class BlockBuilder:
    """Random swaps for one block, exact against `predicted` (our own running state)."""

    def __init__(
        self,
        deployment: Deployment,
        rng: random.Random,
        predicted: Market,
        start_ticks: dict[str, int],
        nonce: int,
    ) -> None:
        self.d = deployment
        self.rng = rng
        self.predicted = predicted
        self.start_ticks = start_ticks
        self.nonce = nonce
        self.txs: list[TxRequest] = []
        self.planned: list[PlannedSwap] = []

    def _tx(self, to: str, data: bytes, gas: int, label: str) -> int:
        self.txs.append(
            TxRequest(
                sender=self.d.trader,
                to=to,
                data=data,
                gas=gas,
                nonce=self.nonce + len(self.txs),
                label=label,
            )
        )
        return len(self.txs) - 1

    def add_random_swap(self) -> None:
        v3 = self.rng.random() < V3_SHARE
        pool = self.rng.choice(self.d.pools_of("v3" if v3 else "v2"))
        if pool.protocol == "v2":
            self._v2(pool)
        else:
            self._v3(pool)

    def _v2(self, pool: Pool) -> None:
        rng = self.rng
        zero_for_one = rng.random() < 0.5
        r0, r1 = self.predicted.v2[pool.address]
        r_in, r_out = (r0, r1) if zero_for_one else (r1, r0)
        amount_in = max(1, int(r_in * _log_uniform(rng, 1e-13, 0.1)))
        while get_amount_out(amount_in, r_in, r_out, V2_FEE_BPS) == 0:
            amount_in *= 10
        out = get_amount_out(amount_in, r_in, r_out, V2_FEE_BPS)
        token_in = pool.token0 if zero_for_one else pool.token1
        outs = (0, out) if zero_for_one else (out, 0)
        over = (0, out + 1) if zero_for_one else (out + 1, 0)
        self._tx(
            token_in.address,
            encode_call("ERC20", "transfer", pool.address, amount_in),
            150_000,
            f"pay {pool.label}",
        )
        probe = self._tx(
            pool.address,
            encode_call("UniswapV2Pair", "swap", *over, self.d.trader, b""),
            300_000,
            f"probe {pool.label}",
        )
        tx = self._tx(
            pool.address,
            encode_call("UniswapV2Pair", "swap", *outs, self.d.trader, b""),
            300_000,
            f"swap {pool.label}",
        )
        self.planned.append(
            PlannedSwap(pool, zero_for_one, amount_in, amount_out=out, tx=tx, probe=probe)
        )
        r_in, r_out = r_in + amount_in, r_out - out
        self.predicted.v2[pool.address] = (r_in, r_out) if zero_for_one else (r_out, r_in)

    def _v3(self, pool: Pool) -> None:
        rng = self.rng
        state = self.predicted.v3[pool.address]
        spacing = state.tick_spacing
        # Leaning back toward the starting price keeps the dense positions in play.
        drift = (state.tick - self.start_ticks[pool.address]) / (40 * spacing)
        zero_for_one = rng.random() < 0.5 + min(max(drift, -0.4), 0.4)
        if rng.random() < 0.1:
            amount_in = rng.randint(1, 10_000)
        else:
            amount_in = self._amount_for_move(state, pool, zero_for_one)
        limit = None
        if rng.random() < LIMIT_PROBABILITY:
            step = _log_uniform(rng, 1e-4, 3e-2)
            factor = 1.0 - step if zero_for_one else 1.0 + step
            limit = state.sqrt_price_x96 * int(factor * 1e12) // 10**12
            limit = min(max(limit, MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
        token_in, token_out = (
            (pool.token0, pool.token1) if zero_for_one else (pool.token1, pool.token0)
        )
        params = (
            token_in.address,
            token_out.address,
            pool.fee,
            self.d.trader,
            DEADLINE,
            amount_in,
            0,
            limit or 0,
        )
        tx = self._tx(
            self.d.swap_router,
            encode_call("SwapRouter", "exactInputSingle", params),
            2_000_000,
            f"swap {pool.label}",
        )
        self.planned.append(PlannedSwap(pool, zero_for_one, amount_in, limit=limit, tx=tx))
        result = swap(state, self.predicted.tables[pool.address], zero_for_one, amount_in, limit)
        self.predicted.v3[pool.address] = _after(state, result)

    def _amount_for_move(self, state: V3SwapState, pool: Pool, zero_for_one: bool) -> int:
        """An input sized to move √P by a random relative step (tiny to a few percent),
        with jitter; sizing uses our own math, the check does not depend on it."""
        rng = self.rng
        step = _log_uniform(rng, 1e-7, 0.05)
        factor = 1.0 - step if zero_for_one else 1.0 + step
        target = state.sqrt_price_x96 * int(factor * 1e15) // 10**15
        target = min(max(target, MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
        if target == state.sqrt_price_x96:
            return rng.randint(1, 10_000)
        reach = swap(state, self.predicted.tables[pool.address], zero_for_one, 2**200, target)
        needed = reach.amount0 if zero_for_one else reach.amount1
        return max(1, int(needed * rng.uniform(0.5, 1.5)))


def _after(state: V3SwapState, result: SwapResult) -> V3SwapState:
    return V3SwapState(
        sqrt_price_x96=result.sqrt_price_x96,
        tick=result.tick,
        liquidity=result.liquidity,
        fee_pips=state.fee_pips,
        tick_spacing=state.tick_spacing,
    )


# -- verifying a mined block --------------------------------------------------------------
def verify_v3(
    ps: PlannedSwap, receipt: dict[str, Any], truth: Market, trader: str, tally: Tally
) -> None:
    address = ps.pool.address
    (event,) = _logs(receipt, address, V3_SWAP)
    w = _words(event)
    actual = (
        _signed(w[0]),
        _signed(w[1]),
        int.from_bytes(w[2], "big"),
        int.from_bytes(w[3], "big"),
        _signed(w[4]),
    )
    before = truth.v3[address]
    table = truth.tables[address]
    result = swap(before, table, ps.zero_for_one, ps.amount_in, ps.limit)
    ours = (result.amount0, result.amount1, result.sqrt_price_x96, result.liquidity, result.tick)
    out = -(result.amount1 if ps.zero_for_one else result.amount0)
    token_out = ps.pool.token1 if ps.zero_for_one else ps.pool.token0
    received = _received(receipt, token_out.address, trader)
    if ps.limit is None and quote_exact_input(before, table, ps.zero_for_one, ps.amount_in) != out:
        tally.mismatches.append(f"{ps.pool.label}: quote_exact_input differs from swap")
    if ours != actual or received != out:
        tally.mismatches.append(
            f"{ps.pool.label} {ps}: ours {ours}, pool {actual}, trader received {received}"
        )
    truth.v3[address] = V3SwapState(
        sqrt_price_x96=actual[2],
        tick=actual[4],
        liquidity=actual[3],
        fee_pips=before.fee_pips,
        tick_spacing=before.tick_spacing,
    )
    tally.v3 += 1
    tally.crossed[result.ticks_crossed] = tally.crossed.get(result.ticks_crossed, 0) + 1
    if ps.limit is not None:
        tally.limited += 1
        tally.limit_reached += result.sqrt_price_x96 == ps.limit


def verify_v2(
    ps: PlannedSwap, receipt: dict[str, Any], truth: Market, trader: str, tally: Tally
) -> None:
    address = ps.pool.address
    r0, r1 = truth.v2[address]
    r_in, r_out = (r0, r1) if ps.zero_for_one else (r1, r0)
    quote = get_amount_out(ps.amount_in, r_in, r_out, V2_FEE_BPS)
    (event,) = _logs(receipt, address, V2_SWAP)
    a0_in, a1_in, a0_out, a1_out = (int.from_bytes(x, "big") for x in _words(event))
    paid_in, paid_out = (a0_in, a1_out) if ps.zero_for_one else (a1_in, a0_out)
    token_out = ps.pool.token1 if ps.zero_for_one else ps.pool.token0
    received = _received(receipt, token_out.address, trader)
    if (quote, quote, quote, ps.amount_in) != (ps.amount_out, paid_out, received, paid_in):
        tally.mismatches.append(
            f"{ps.pool.label} {ps}: quote {quote} against reserves "
            f"{(r0, r1)}, pair paid {paid_out} for {paid_in}"
        )
    (sync,) = _logs(receipt, address, V2_SYNC)
    truth.v2[address] = (
        int.from_bytes(_words(sync)[0], "big"),
        int.from_bytes(_words(sync)[1], "big"),
    )
    tally.v2 += 1


def run_block(chain: DevChain, builder: BlockBuilder, truth: Market, tally: Tally) -> None:
    hashes = send_transactions(chain.w3, builder.txs)
    number = mine(chain.w3)
    mined = receipts(chain.w3, hashes)
    probes = {ps.probe for ps in builder.planned if ps.probe is not None}
    for i, receipt in enumerate(mined):
        assert int(receipt["blockNumber"], 16) == number, builder.txs[i].label
        expected = "0x0" if i in probes else "0x1"
        assert receipt["status"] == expected, (builder.txs[i].label, receipt)
        if i in probes:
            assert _revert_reason(chain, hashes[i]) == "UniswapV2: K", builder.txs[i].label
    trader = chain.deployment.trader
    for ps in builder.planned:
        verify = verify_v2 if ps.pool.protocol == "v2" else verify_v3
        verify(ps, mined[ps.tx], truth, trader, tally)
        tally.zero_for_one += ps.zero_for_one


@pytest.fixture
def dense_chain(clean_devchain: DevChain) -> Iterator[DevChain]:
    mint_dense_positions(clean_devchain, random.Random(SEED))
    yield clean_devchain
    # Leave the shared node as deployed for whoever comes next.
    if rpc_call(clean_devchain.w3, "evm_revert", [clean_devchain.snapshot_id]) is not True:
        raise RuntimeError("evm_revert to the deployment snapshot failed")
    clean_devchain.snapshot_id = str(rpc_call(clean_devchain.w3, "evm_snapshot", []))


def test_quotes_equal_the_contracts_outputs_to_the_wei(dense_chain: DevChain) -> None:
    chain = dense_chain
    rng = random.Random(SEED + 1)
    tally = Tally()
    start = hydrate_market(chain, block_number(chain.w3))
    start_ticks = {address: state.tick for address, state in start.v3.items()}
    carried: Market | None = None
    for _ in range(BLOCKS):
        truth = hydrate_market(chain, block_number(chain.w3))
        if carried is not None:
            # What the previous block's events said is what RPC now reports.
            assert (truth.v2, truth.v3) == (carried.v2, carried.v3)
        builder = BlockBuilder(
            chain.deployment,
            rng,
            truth.copy(),
            start_ticks,
            nonce_at(chain.w3, chain.deployment.trader),
        )
        for _ in range(SWAPS_PER_BLOCK):
            builder.add_random_swap()
        run_block(chain, builder, truth, tally)
        carried = truth
    crossed = {n: tally.crossing_at_least(n) for n in (1, 2, 5, 10)}
    print(
        f"\n{tally.total} swaps ({tally.v2} V2, {tally.v3} V3, {tally.zero_for_one} zero-for-one, "
        f"{tally.limited} with a price limit, {tally.limit_reached} stopped at it); V3 swaps "
        f"crossing >= n initialized ticks: {crossed}; max {max(tally.crossed)}; "
        f"{len(tally.mismatches)} mismatches"
    )
    assert tally.mismatches == []
    assert tally.total >= 500
    assert tally.v2 >= 100 and tally.v3 >= 300
    assert 0.3 * tally.total < tally.zero_for_one < 0.7 * tally.total
    assert crossed[1] >= 50 and crossed[5] >= 10
    assert tally.limit_reached >= 10 and tally.limited - tally.limit_reached >= 10
