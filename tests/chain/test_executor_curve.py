"""Cycles through a real Curve StableSwap-NG pool, executed by the contract, realize
exactly the profit the journal expected — to the wei.

A 2-coin plain pool of curvefi's bytecode (`devchain/contracts/curve`) over the dev
chain's USDC and DAI, seeded off balance so its price differs from the Uniswap pools';
an arena hydrated at the tip finds the cycles through it; the live executor selects,
simulates, sends and journals them. The Curve hop is never first (no flash swap): the
hop before sends its output to the pool, which swaps it with `exchange_received`. A cycle
that would start with the Curve hop is refused by the selection, and by the contract
with `FirstHopCannotFlash`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final

import msgspec
import pytest

from devchain import TrafficGenerator
from devchain.abi import call
from devchain.curve_pool import CurvePool, deploy_curve_pool_of
from devchain.deploy import Token
from devchain.executor_world import arena_opportunities, automine
from devchain.whitelist_file import whitelist_document
from executor.errors import PathEncodingError
from executor.interface import encode_execute, revert_name
from executor.journal import AttemptStatus, read_journal
from executor.path import Hop, HopKind, curve_coins, decode_path
from executor.route import HopKinds
from executor.session import OpportunityExecutor
from exex_bridge.whitelist import load_whitelist_file
from pathfinder.opportunity import Opportunity
from tests.chain.conftest import DevChain
from tests.chain.executor_fixtures import (
    ExecutorWorld,
    call_revert,
    expected_gas_units,
    make_executor_world,
)
from tests.chain.test_executor_realization import check_included

pytestmark = pytest.mark.chain

WANTED: Final = 4
MAX_ROUNDS: Final = 60
USD: Final = 1_000_000


@pytest.fixture
def curve_world(clean_devchain: DevChain, tmp_path: Path) -> tuple[ExecutorWorld, CurvePool]:
    chain = clean_devchain
    usdc, dai = chain.deployment.token("USDC"), chain.deployment.token("DAI")
    curve = deploy_curve_pool_of(
        chain.w3,
        chain.deployment.deployer,
        coins=(usdc.address, dai.address),
        decimals=(usdc.decimals, dai.decimals),
        amp=200,
        fee=1_000_000,  # 0.01 %
        offpeg_fee_multiplier=20_000_000_000,
        liquidity=(3 * USD * 10**usdc.decimals, 2 * USD * 10**dai.decimals),
    )
    return _with_curve_pool(make_executor_world(chain, tmp_path), curve, (usdc, dai)), curve


def _with_curve_pool(
    world: ExecutorWorld, curve: CurvePool, coins: tuple[Token, ...]
) -> ExecutorWorld:
    """The world's whitelist with `curve` added: its first two coins as the pair, the
    others as its extra tokens."""
    token = [{"address": c.address.lower(), "decimals": c.decimals} for c in coins]
    entry: dict[str, object] = {
        "address": curve.address.lower(),
        "protocol": "curve_stable",
        "token0": token[0],
        "token1": token[1],
    }
    if len(coins) > 2:
        entry["extra_tokens"] = token[2:]
    document = whitelist_document(world.chain.deployment)
    document["pools"].append(entry)
    world.whitelist.write_bytes(msgspec.json.encode(document))
    world.pools = load_whitelist_file(world.whitelist).pools
    world.kinds = HopKinds(world.pools)
    return world


def through_curve(world: ExecutorWorld, opportunity: Opportunity) -> bool:
    return HopKind.CURVE_STABLE in {world.kinds.kind(p) for p in opportunity.pools}


def test_cycles_through_a_curve_pool_realize_the_expected_profit(
    curve_world: tuple[ExecutorWorld, CurvePool],
) -> None:
    world, _ = curve_world
    w3, deployment = world.chain.w3, world.chain.deployment
    generator = TrafficGenerator(w3, deployment, seed=2718)
    executor = OpportunityExecutor.open(world.settings(live=True))
    done = 0
    try:
        for _ in range(MAX_ROUNDS):
            found = arena_opportunities(w3, world.pools)
            feed = [o for o in found if through_curve(world, o)]
            for opportunity in feed:  # the pathfinder's gas: the base and each hop's kind
                assert opportunity.gas_units == expected_gas_units(world.kinds, opportunity)
            before = executor.journal.written
            with automine(w3):
                executor(feed)
            for entry in read_journal(executor.journal.path)[before:]:
                if entry.status is AttemptStatus.INCLUDED:
                    done += 1
            if done >= WANTED:
                break
            generator.run(2)
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    print(done, Counter(e.status.value for e in journal), Counter(e.reason for e in journal))
    assert done >= WANTED
    assert not [e for e in journal if e.status in (AttemptStatus.REVERTED, AttemptStatus.DROPPED)]
    profits: Counter[str] = Counter()
    for entry in journal:
        if entry.status is AttemptStatus.INCLUDED:
            kinds = [world.kinds.kind(p) for p in entry.pools]
            assert HopKind.CURVE_STABLE in kinds[1:]
            check_included(world, entry)
            print([k.name for k in kinds], "gas used", entry.gas_used)
            assert entry.start_token is not None and entry.realized_profit is not None
            profits[entry.start_token.lower()] += entry.realized_profit
    for token in deployment.tokens:
        held = call(w3, token.address, "ERC20", "balanceOf", world.executor)[0]
        assert held == profits[token.address.lower()]


def test_a_cycle_starting_with_the_curve_hop_is_refused(
    curve_world: tuple[ExecutorWorld, CurvePool],
) -> None:
    world, curve = curve_world
    found = [o for o in arena_opportunities(world.chain.w3, world.pools) if through_curve(world, o)]
    assert found
    opportunity = found[0]
    assert world.kinds.routable(opportunity)
    hops = decode_path(world.kinds.packed_path(opportunity))
    assert hops[0].kind is not HopKind.CURVE_STABLE
    n = [h.kind for h in hops].index(HopKind.CURVE_STABLE)
    # the same cycle rotated to start at the Curve hop: no flash swap to fund it
    rotated = msgspec.structs.replace(
        opportunity,
        pools=opportunity.pools[n:] + opportunity.pools[:n],
        zero_for_one=opportunity.zero_for_one[n:] + opportunity.zero_for_one[:n],
        tokens=opportunity.tokens[n:-1] + opportunity.tokens[:n] + (opportunity.tokens[n],),
    )
    assert not world.kinds.routable(rotated)
    with pytest.raises(PathEncodingError):
        world.kinds.packed_path(rotated)
    first = Hop(
        pool=bytes.fromhex(curve.address[2:]),
        kind=HopKind.CURVE_STABLE,
        zero_for_one=True,
        key=curve_coins(0, 1),
    )
    # a hand-made path (the encoder refuses it too): the Curve record, then the real cycle
    raw = first.pool + bytes([int(first.kind) << 1 | 1]) + first.key
    raw += world.kinds.packed_path(opportunity)
    data = encode_execute(raw, 10**6, 0, 0, world.client.block_number() + 5)
    assert revert_name(call_revert(world, world.key.address, world.executor, data)) == (
        "FirstHopCannotFlash"
    )


@pytest.fixture
def three_coin_world(clean_devchain: DevChain, tmp_path: Path) -> tuple[ExecutorWorld, CurvePool]:
    """A 3-coin pool (USDC, DAI, WBTC): the whitelist lists USDC and DAI as its pair and
    WBTC among its extra tokens; with 10 WBTC against a million of each dollar, the pool
    pays about 57 000 USDC for a WBTC that the Uniswap pools price near 40 000."""
    chain = clean_devchain
    usdc, dai = chain.deployment.token("USDC"), chain.deployment.token("DAI")
    wbtc = chain.deployment.token("WBTC")
    curve = deploy_curve_pool_of(
        chain.w3,
        chain.deployment.deployer,
        coins=(usdc.address, dai.address, wbtc.address),
        decimals=(usdc.decimals, dai.decimals, wbtc.decimals),
        amp=200,
        fee=1_000_000,
        offpeg_fee_multiplier=20_000_000_000,
        liquidity=(USD * 10**usdc.decimals, USD * 10**dai.decimals, 10 * 10**wbtc.decimals),
    )
    world = make_executor_world(chain, tmp_path)
    return _with_curve_pool(world, curve, (usdc, dai, wbtc)), curve


def test_a_cycle_through_the_third_coin_of_a_curve_pool_realizes_its_profit(
    three_coin_world: tuple[ExecutorWorld, CurvePool],
) -> None:
    """The arena names the coins of each Curve hop by the pool's own indexes
    (`Opportunity.coin_indices`); the executor routes a hop through coin 2 with them, and
    the contract realizes exactly the expected profit. Without them it is refused."""
    world, curve = three_coin_world
    curve_key = curve.address.lower()
    found = arena_opportunities(world.chain.w3, world.pools)
    third = [
        o
        for o in found
        if any(
            p == curve_key and pair is not None and 2 in pair
            for p, pair in zip(o.pools, o.coin_indices, strict=True)
        )
    ]
    assert third, [(o.pools, o.coin_indices) for o in found]
    for opportunity in third:
        assert world.kinds.routable(opportunity)
        assert not world.kinds.routable(msgspec.structs.replace(opportunity, coin_indices=()))
        n = opportunity.pools.index(curve_key)
        hop = decode_path(world.kinds.packed_path(opportunity))[n]
        pair = opportunity.coin_indices[n]
        assert pair is not None and hop.key == curve_coins(*pair)
    # A wrong index beyond the whitelisted pair (the pool has no coin 3): the route cannot
    # tell, the simulation does — refused, nothing sent.
    opportunity = third[0]
    n = opportunity.pools.index(curve_key)
    pair = opportunity.coin_indices[n]
    assert pair is not None
    wrong = tuple(3 if c == 2 else c for c in pair)
    tampered = msgspec.structs.replace(
        opportunity,
        coin_indices=tuple(wrong if k == n else c for k, c in enumerate(opportunity.coin_indices)),
    )
    assert world.kinds.routable(tampered)
    nonce = world.client.nonce(world.key.address, "pending")
    executor = OpportunityExecutor.open(world.settings(live=True))
    try:
        with automine(world.chain.w3):
            executor([tampered])
            assert world.client.nonce(world.key.address, "pending") == nonce  # nothing sent
            executor([opportunity])
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    assert journal[0].status is AttemptStatus.REFUSED, journal[0]
    included = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    assert len(included) == 1, Counter(e.reason for e in journal)
    check_included(world, included[0])
