"""The arena against a real Curve StableSwap-NG plain pool on anvil.

The pool is curvefi's `CurveStableSwapNG.vy`, deployed from its compiled artifact
(devchain/contracts/curve) over three mock coins of 18, 6 and 8 decimals.

- Hydration (`read_curve_pools`) reads what the pool's own getters say: balances,
  stored rates, fee, offpeg multiplier, A values; a pool whose rates are not the plain
  ones is excluded and counted by reason, and is not hydrated again.
- Every exchange pays exactly what `curve_stableswap.exchange` computes from the state
  read before it, and the pool's storage after it (what the stream's `CurveLiquidity`
  carries: stored minus admin balances) equals the balances `exchange` predicts, the
  admin half of the fee taken out. Fed to the engine as the producer sends it, that
  state is what the arena's store then holds.
"""

from __future__ import annotations

import random

import pytest
from web3 import Web3

from arena.coin_pools import CurveParams
from arena.curve_hydration import CurveExclusion, read_curve_pools
from arena.engine import ArenaEngine, PoolStatus
from arena.resync import hydrate_indices, pools_to_hydrate
from devchain import AnvilNode
from devchain.curve_pool import CurvePool, deploy_curve_pool, mine
from exex_bridge import messages as m
from exex_bridge.whitelist import Token, WhitelistedPool
from pathfinder.curve_hop import stableswap_pool
from pathfinder.curve_stableswap import exchange

DECIMALS = (18, 6, 8)
AMP, FEE, OFFPEG = 200, 4_000_000, 20_000_000_000


@pytest.fixture(scope="module")
def w3(anvil_node: AnvilNode) -> Web3:
    return anvil_node.web3()


@pytest.fixture(scope="module")
def curve(w3: Web3) -> CurvePool:
    liquidity = (3_000_000 * 10**18, 2_000_000 * 10**6, 2_500_000 * 10**8)
    return deploy_curve_pool(
        w3,
        w3.eth.accounts[0],
        decimals=DECIMALS,
        amp=AMP,
        fee=FEE,
        offpeg_fee_multiplier=OFFPEG,
        liquidity=liquidity,
    )


def storage_state(w3: Web3, address: str) -> dict[str, object]:
    """The pool's storage as the stream's producer reads it for `CurveLiquidity`."""

    def slot(k: int) -> int:
        return int.from_bytes(w3.eth.get_storage_at(Web3.to_checksum_address(address), k), "big")

    n = slot(1)
    return {
        "effective_balances": tuple(max(0, slot(2 + i) - slot(17 + i)) for i in range(n)),
        "fee": slot(10),
        "offpeg_fee_multiplier": slot(11),
        "initial_a": slot(12),
        "future_a": slot(13),
        "initial_a_time": slot(14),
        "future_a_time": slot(15),
    }


def whitelisted(curve: CurvePool) -> WhitelistedPool:
    address = bytes.fromhex(curve.address[2:])
    tokens = [
        Token(address=bytes.fromhex(c.address[2:]), decimals=d)
        for c, d in zip(curve.coins, curve.decimals, strict=True)
    ]
    return WhitelistedPool(
        key=address,
        address=address,
        protocol=m.Protocol.CURVE_STABLE,
        token0=tokens[0],
        token1=tokens[1],
    )


def test_hydration_reads_what_the_pool_says(w3: Web3, curve: CurvePool) -> None:
    sender = w3.eth.accounts[0]
    for i, j, dx in ((0, 1, 10_000 * 10**18), (2, 0, 5_000 * 10**8), (1, 2, 7_000 * 10**6)):
        mine(
            w3,
            curve.pool.functions.exchange(i, j, dx, 0).transact({"from": sender, "gas": 2_000_000}),
        )
    block = w3.eth.block_number
    (snap,) = read_curve_pools(w3, [curve.address], block)
    assert snap.excluded is None and snap.state is not None
    p = curve.pool.functions
    state = snap.state
    assert state.balances == tuple(p.balances(i).call() for i in range(3))
    assert any(p.admin_balances(i).call() for i in range(3))  # the fee's admin half
    assert state.coins == tuple(bytes.fromhex(c.address[2:]) for c in curve.coins)
    assert isinstance(state.params, CurveParams)
    assert state.params.rates == tuple(p.stored_rates().call())
    assert state.params.rates == tuple(10 ** (36 - d) for d in DECIMALS)
    assert (state.params.fee, state.params.offpeg_fee_multiplier) == (FEE, OFFPEG)
    assert state.params.initial_a == p.initial_A().call() == AMP * 100
    assert state.params.future_a == p.future_A().call()
    assert state.balances == storage_state(w3, curve.address)["effective_balances"]


def test_exchanges_and_stream_state_match_the_pool(w3: Web3, curve: CurvePool) -> None:
    sender = w3.eth.accounts[0]
    engine = ArenaEngine()
    engine.add_pools([whitelisted(curve)])
    hydrate_indices(engine, w3, [0], w3.eth.block_number)
    assert engine.status[0] == PoolStatus.LIVE
    rng = random.Random(14)
    for k in range(12):
        state = engine.coins.state(0)
        assert state is not None
        math_pool = stableswap_pool(state)
        assert math_pool is not None
        i, j = rng.sample(range(3), 2)
        dx = rng.randrange(1, 10 ** (DECIMALS[i] + rng.choice((0, 3, 6))))
        block = w3.eth.get_block("latest")
        predicted = exchange(math_pool, i, j, dx, block["timestamp"] + 12)
        coin_j = curve.coins[j].functions
        before = coin_j.balanceOf(sender).call()
        tx = curve.pool.functions.exchange(i, j, dx, 0).transact({"from": sender, "gas": 2_000_000})
        receipt = mine(w3, tx)
        assert receipt["status"] == 1
        assert coin_j.balanceOf(sender).call() - before == predicted.dy
        after = storage_state(w3, curve.address)
        assert after["effective_balances"] == predicted.balances
        # The producer's message for this block, through the engine.
        payload = m.CurveLiquidity(**after)  # type: ignore[arg-type]
        event = m.PoolUpdateMessage(
            pool_id=m.PoolAddress(value=bytes.fromhex(curve.address[2:])),
            protocol=m.Protocol.CURVE_STABLE,
            update_type=m.UpdateType.SWAP,
            block_number=receipt["blockNumber"],
            block_timestamp=0,
            tx_index=0,
            log_index=k,
            is_revert=False,
            update=payload,
        )
        begin = m.BeginBlock(
            stream_seq=1,
            block_number=receipt["blockNumber"],
            block_timestamp=w3.eth.get_block(receipt["blockNumber"])["timestamp"],
            base_fee_per_gas=1,
            is_revert=False,
        )
        engine.apply_block(begin, [event])
        stored = engine.coins.state(0)
        assert stored is not None
        assert (
            stored.balances
            == predicted.balances
            == tuple(curve.pool.functions.balances(c).call() for c in range(3))
        )


def test_pools_with_other_rates_are_excluded_and_counted(w3: Web3) -> None:
    odd = deploy_curve_pool(
        w3,
        w3.eth.accounts[0],
        decimals=(18, 18),
        amp=100,
        fee=FEE,
        offpeg_fee_multiplier=OFFPEG,
        liquidity=(10**24, 10**24),
        rates=(10**18, 2 * 10**18),
    )
    (snap,) = read_curve_pools(w3, [odd.address], w3.eth.block_number)
    assert snap.state is None and snap.excluded is CurveExclusion.RATES_NOT_PLAIN
    engine = ArenaEngine()
    engine.add_pools([whitelisted(odd)])
    for _ in range(2):  # counted once per pool and reason
        report = hydrate_indices(engine, w3, [0], w3.eth.block_number)
        assert report.not_hydratable == 1
    assert engine.metrics.coin_pools_excluded.labels(reason="rates_not_plain")._value.get() == 1
    assert engine.status[0] == PoolStatus.UNKNOWN
    assert engine.coins.state(0) is None
    assert pools_to_hydrate(engine) == []


def test_an_address_without_a_pool_is_unreadable(w3: Web3) -> None:
    (snap,) = read_curve_pools(w3, ["0x" + "00" * 19 + "42"], w3.eth.block_number)
    assert snap.state is None and snap.excluded is CurveExclusion.UNREADABLE
