"""Cycles through Uniswap V4 pools, executed by the contract on the real PoolManager,
realize exactly the profit the journal expected — to the wei.

The dev chain has V2 pairs, V3 pools and the PoolManager's V4 pools (hooked and
dynamic-fee ones too, which the pathfinder leaves out). Rounds of seeded traffic (V4
swaps and liquidity included) move prices; an arena hydrated at the tip finds the
cycles; the live executor selects, simulates, sends and journals those of the kind run
least so far: a V4 pool as the first hop (the flash inside one unlock), a V4 pool as a
later hop (its own unlock, or the open one when the first hop is V4 too). Each included
transaction's realized profit is read here from the start token's Transfer logs.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Final

import pytest

from devchain import TrafficGenerator
from devchain.abi import call
from devchain.executor_world import arena_opportunities, automine
from devchain.v4_world import V4Traffic
from executor.journal import AttemptStatus, read_journal
from executor.path import HopKind
from executor.session import OpportunityExecutor
from pathfinder.opportunity import Opportunity
from tests.chain.conftest import V4DevChain
from tests.chain.executor_fixtures import ExecutorWorld, make_executor_world
from tests.chain.test_executor_realization import check_included

pytestmark = pytest.mark.chain

WANTED_EACH: Final = 3
MAX_ROUNDS: Final = 80
V4_FIRST: Final = "v4 first"
V4_LATER: Final = "v4 later"


@pytest.fixture
def v4_executor_world(clean_v4_devchain: V4DevChain, tmp_path: Path) -> ExecutorWorld:
    return make_executor_world(clean_v4_devchain.chain, tmp_path, v4=clean_v4_devchain.v4)


def v4_category(world: ExecutorWorld, pools: tuple[str, ...]) -> str | None:
    kinds = [world.kinds.kind(p) for p in pools]
    if kinds[0] is HopKind.UNISWAP_V4:
        return V4_FIRST
    if HopKind.UNISWAP_V4 in kinds:
        return V4_LATER
    return None


def rarest(world: ExecutorWorld, found: list[Opportunity], done: Counter[str]) -> list[Opportunity]:
    by_category: dict[str, list[Opportunity]] = {}
    for opportunity in found:
        category = v4_category(world, opportunity.pools)
        if category is not None:
            by_category.setdefault(category, []).append(opportunity)
    if not by_category:
        return []
    return by_category[min(by_category, key=lambda c: (done[c], c))]


def test_cycles_with_a_v4_hop_first_or_later_realize_the_expected_profit(
    clean_v4_devchain: V4DevChain, v4_executor_world: ExecutorWorld
) -> None:
    world, chain = v4_executor_world, clean_v4_devchain
    w3, deployment = chain.w3, chain.deployment
    hookless = tuple(p for p in chain.v4.pools if int(p.hooks, 16) == 0)
    traffic = V4Traffic(chain.v4, hookless)
    generator = TrafficGenerator(w3, deployment, seed=404, extra_actions=traffic.actions(swap=6))
    tokens = [t.address for t in deployment.tokens]
    executor = OpportunityExecutor.open(world.settings(live=True))
    done: Counter[str] = Counter()
    try:
        for _ in range(MAX_ROUNDS):
            feed = rarest(world, arena_opportunities(w3, world.pools), done)
            before = executor.journal.written
            with automine(w3):
                executor(feed)
            for entry in read_journal(executor.journal.path)[before:]:
                category = v4_category(world, entry.pools)
                if entry.status is AttemptStatus.INCLUDED and category is not None:
                    done[category] += 1
            if min(done[V4_FIRST], done[V4_LATER]) >= WANTED_EACH:
                break
            generator.run(2)
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    print(dict(done), Counter(e.status.value for e in journal))
    print(Counter(e.reason for e in journal if e.reason))
    print([(e.pools, e.gas_used) for e in journal if e.status is AttemptStatus.INCLUDED])
    assert done[V4_FIRST] >= WANTED_EACH and done[V4_LATER] >= WANTED_EACH, dict(done)
    assert not [e for e in journal if e.status in (AttemptStatus.REVERTED, AttemptStatus.DROPPED)]
    profits: Counter[str] = Counter()
    for entry in journal:
        if entry.status is AttemptStatus.INCLUDED:
            check_included(world, entry)
            assert entry.start_token is not None and entry.realized_profit is not None
            profits[entry.start_token.lower()] += entry.realized_profit
    # The contract started with nothing; it holds exactly the profits now.
    for token in tokens:
        assert call(w3, token, "ERC20", "balanceOf", world.executor)[0] == profits[token.lower()]
