"""The arena's opportunities, executed live by the contract on the real Uniswap V2/V3
contracts, realize exactly the profit the journal expected — to the wei.

Rounds: seeded traffic moves prices (opening gaps), an arena hydrated at the tip finds
the cycles, the executor (live, anvil mining each transaction) selects, simulates, sends
and journals them. Each round feeds the cycles of the kind (V2-only, V3-only, mixed; 2
or 3 hops) executed least so far, so every kind is exercised. Every included
transaction's realized profit is read here, independently, from the start token's
Transfer logs to and from the contract in its receipt.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

import pytest
from eth_utils.crypto import keccak

from devchain import TrafficGenerator
from devchain.abi import call
from devchain.executor_world import arena_opportunities, automine
from executor.journal import AttemptStatus, JournalEntry, read_journal
from executor.path import HopKind
from executor.session import OpportunityExecutor
from pathfinder.opportunity import Opportunity
from tests.chain.executor_fixtures import ExecutorWorld, executor_world

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

WANTED: Final = 50
MAX_ROUNDS: Final = 120
TRANSFER: Final = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def category(world: ExecutorWorld, pools: tuple[str, ...]) -> str:
    kinds = {world.kinds.kind(p) for p in pools}
    name = {
        frozenset({HopKind.UNISWAP_V2}): "v2",
        frozenset({HopKind.UNISWAP_V3}): "v3",
    }.get(frozenset(kinds), "mixed")
    return f"{len(pools)}-hop {name}"


def transfers_net(receipt: dict[str, Any], token: str, holder: str) -> int:
    holder_topic = "0x" + "00" * 12 + holder.lower()[2:]
    net = 0
    for log in receipt["logs"]:
        if log["address"].lower() != token.lower() or log["topics"][0] != TRANSFER:
            continue
        amount = int(log["data"], 16)
        net += amount if log["topics"][2].lower() == holder_topic else 0
        net -= amount if log["topics"][1].lower() == holder_topic else 0
    return net


def least_executed(
    world: ExecutorWorld, found: list[Opportunity], done: Counter[str]
) -> list[Opportunity]:
    by_category: dict[str, list[Opportunity]] = {}
    for opportunity in found:
        by_category.setdefault(category(world, opportunity.pools), []).append(opportunity)
    if not by_category:
        return []
    rarest = min(by_category, key=lambda c: (done[c], c))
    return by_category[rarest]


def test_each_included_transaction_realizes_the_expected_profit(
    executor_world: ExecutorWorld,
) -> None:
    world = executor_world
    w3, deployment = world.chain.w3, world.chain.deployment
    tokens = [t.address for t in deployment.tokens]
    assert all(call(w3, t, "ERC20", "balanceOf", world.executor)[0] == 0 for t in tokens)
    generator = TrafficGenerator(w3, deployment, seed=77)
    executor = OpportunityExecutor.open(world.settings(live=True))
    done: Counter[str] = Counter()
    try:
        for _ in range(MAX_ROUNDS):
            generator.run(2)
            feed = least_executed(world, arena_opportunities(w3, world.pools), done)
            before = executor.journal.written
            with automine(w3):
                executor(feed)
            for entry in read_journal(executor.journal.path)[before:]:
                if entry.status is AttemptStatus.INCLUDED:
                    done[category(world, entry.pools)] += 1
            if sum(done.values()) >= WANTED and len(done) >= 5:
                break
    finally:
        executor.close()
    journal = read_journal(world.tmp / "journal.jsonl")
    included = [e for e in journal if e.status is AttemptStatus.INCLUDED]
    print(dict(done), Counter(e.status.value for e in journal))
    assert len(included) >= WANTED
    assert not [e for e in journal if e.status in (AttemptStatus.REVERTED, AttemptStatus.DROPPED)]
    # every kind of cycle the dev chain has: V2 pairs exist once per token pair, so a
    # V2-only cycle has 3 hops
    assert {"2-hop v3", "2-hop mixed", "3-hop v2", "3-hop v3", "3-hop mixed"} <= set(done)
    profits: Counter[str] = Counter()
    for entry in included:
        check_included(world, entry)
        assert entry.start_token is not None and entry.realized_profit is not None
        profits[entry.start_token.lower()] += entry.realized_profit
    # The contract started with nothing; it holds exactly the profits now.
    for token in tokens:
        held = call(w3, token, "ERC20", "balanceOf", world.executor)[0]
        assert held == profits[token.lower()]


def check_included(world: ExecutorWorld, entry: JournalEntry) -> None:
    assert entry.tx_hash is not None and entry.start_token is not None
    receipt = world.client.receipt(entry.tx_hash)
    assert receipt is not None and receipt["status"] == "0x1"
    realized = transfers_net(receipt, entry.start_token, world.executor)
    assert entry.expected_profit is not None and entry.expected_profit > 0
    assert realized == entry.expected_profit == entry.realized_profit
    assert entry.gas_estimate is not None and entry.gas_limit is not None
    assert int(receipt["gasUsed"], 16) == entry.gas_used
    assert entry.gas_used is not None and entry.gas_used <= entry.gas_estimate <= entry.gas_limit
