"""Cycles through Uniswap V4 pools, executed by the contract on the real PoolManager,
realize exactly the profit the journal expected — to the wei.

The dev chain has V2 pairs, V3 pools and the PoolManager's V4 pools (hooked and
dynamic-fee ones too, which the pathfinder leaves out). Rounds of seeded traffic (V4
swaps and liquidity included) move prices; an arena hydrated at the tip finds the
cycles; the live executor selects, simulates, sends and journals those of the kind run
least so far: a V4 pool as the first hop only (the flash inside one unlock), as a later
hop only (an unlock of its own), and both (the later hop inside the first hop's unlock).
Each included transaction's realized profit is read here from the start token's Transfer
logs.
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
from tests.chain.executor_fixtures import ExecutorWorld, expected_gas_units, make_executor_world
from tests.chain.test_executor_realization import check_included

pytestmark = pytest.mark.chain

WANTED: Final = 6
MAX_ROUNDS: Final = 80
V4_FIRST: Final = "v4 first"  # the flash inside one unlock
V4_LATER: Final = "v4 later"  # an unlock of its own inside another pool's callback
V4_BOTH: Final = "v4 first and later"  # the later hop inside the first hop's unlock
CATEGORIES: Final = (V4_FIRST, V4_LATER, V4_BOTH)


@pytest.fixture
def v4_executor_world(clean_v4_devchain: V4DevChain, tmp_path: Path) -> ExecutorWorld:
    return make_executor_world(clean_v4_devchain.chain, tmp_path, v4=clean_v4_devchain.v4)


def v4_category(world: ExecutorWorld, pools: tuple[str, ...]) -> str | None:
    kinds = [world.kinds.kind(p) for p in pools]
    later = HopKind.UNISWAP_V4 in kinds[1:]
    if kinds[0] is HopKind.UNISWAP_V4:
        return V4_BOTH if later else V4_FIRST
    return V4_LATER if later else None


def rarest(world: ExecutorWorld, found: list[Opportunity], done: Counter[str]) -> list[Opportunity]:
    by_category: dict[str, list[Opportunity]] = {}
    for opportunity in found:
        category = v4_category(world, opportunity.pools)
        if category is not None:
            by_category.setdefault(category, []).append(opportunity)
    if not by_category:
        return []
    return by_category[min(by_category, key=lambda c: (done[c], c))]


def test_cycles_with_a_v4_hop_first_later_or_both_realize_the_expected_profit(
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
            for opportunity in feed:  # the pathfinder's gas: the base and each hop's kind
                assert opportunity.gas_units == expected_gas_units(world.kinds, opportunity)
            before = executor.journal.written
            with automine(w3):
                executor(feed)
            for entry in read_journal(executor.journal.path)[before:]:
                category = v4_category(world, entry.pools)
                if entry.status is AttemptStatus.INCLUDED and category is not None:
                    done[category] += 1
            if all(done[c] for c in CATEGORIES) and sum(done.values()) >= WANTED:
                break
            generator.run(2)
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    print(dict(done), Counter(e.status.value for e in journal))
    print(Counter(e.reason for e in journal if e.reason))
    for entry in journal:
        if entry.status is AttemptStatus.INCLUDED:
            print([world.kinds.kind(p).name for p in entry.pools], "gas used", entry.gas_used)
    assert all(done[c] for c in CATEGORIES) and sum(done.values()) >= WANTED, dict(done)
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
