"""The real Balancer V2 Vault on anvil → chain follower → arena: exact state and quotes.

Pools of the 20210418 factories (WeightedPool, WeightedPool2Tokens) and of the 20220908
weighted pool v2 factory take seeded swaps, joins, exits and fee changes, with reorgs
(`anvil_reorg` with replacement traffic) and rollbacks. At every settled point the
arena's balances and fees equal `Vault.getPoolTokens` / `getSwapFeePercentage` at that
block, and every swap's output equals our quote from the arena's state, the Vault's own
`BalancerQueries.querySwap` read before the block, and the amount the Vault paid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from web3 import Web3

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.pipeline import Pipeline
from arena.pool_status import PoolStatus
from arena.rpc_sync import RpcSync
from arena.summary import samples_by_label
from devchain import AnvilNode, execute_block, reorg, rollback, rpc_call
from devchain.balancer_traffic import BalancerOp, BalancerTraffic
from devchain.balancer_world import BalancerWorld, deploy_balancer_world, vault_swaps
from exex_bridge.producers.chain_follower import ChainFollower
from pathfinder.balancer_weighted import quote_out
from pathfinder.errors import MathDomainError

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def world() -> Iterator[BalancerWorld]:
    with AnvilNode() as node:
        yield deploy_balancer_world(node.web3())


@pytest.fixture
def clean_world(world: BalancerWorld) -> Iterator[BalancerWorld]:
    snapshot = rpc_call(world.w3, "evm_snapshot", [])
    yield world
    assert rpc_call(world.w3, "evm_revert", [snapshot]) is True


@dataclass
class Counts:
    swaps: int = 0
    joins: int = 0
    exits: int = 0
    fees: int = 0
    settles: int = 0
    checks: int = 0
    reverted_blocks: int = 0
    mismatches: list[str] = field(default_factory=list)


class BalancerProof:
    """Follower (no socket: its frames are fed to the pipeline in order) and arena."""

    def __init__(self, world: BalancerWorld, seed: int) -> None:
        self.world = world
        self.w3: Web3 = world.w3
        self.traffic = BalancerTraffic(world, seed)
        self.frames: list[bytes] = []
        pools = world.whitelisted()
        self.follower = ChainFollower(
            self.w3,
            pools,
            None,
            start_block=int(self.w3.eth.block_number) + 1,
            on_frame=self.frames.append,
            balancer_vault=bytes.fromhex(world.vault[2:]),
        )
        self.engine = ArenaEngine(capacity=16)
        self.engine.add_pools(pools)
        self.pipeline = Pipeline(self.engine)
        self.rpc_sync = RpcSync(self.engine, self.w3)
        self.pipeline.subscribe_block_start(self.rpc_sync.before_block)
        self.counts = Counts()
        self.index = {p.pool_id: self.engine.registry.index_of[p.pool_id] for p in world.pools}

    def quote(self, op: BalancerOp) -> int | str:
        state = self.engine.coins.state(self.index[op.pool.pool_id])
        assert state is not None
        token_in = bytes.fromhex(op.pool.tokens[op.i][2:])
        token_out = bytes.fromhex(op.pool.tokens[op.j][2:])
        try:
            return quote_out(state, token_in, token_out, op.amount)
        except MathDomainError as exc:
            return exc.reason

    async def blocks(self, n: int) -> None:
        for _ in range(n):
            ops = self.traffic.build_block()
            swaps = [op for op in ops if op.kind == "swap"]
            expected = {
                op.pool.pool_id: (
                    self.quote(op),
                    self.world.query_swap(op.pool, op.i, op.j, op.amount),
                )
                for op in swaps
            }
            _, receipts = execute_block(self.w3, self.traffic.numbered(ops))
            paid = vault_swaps(receipts, self.world.vault)
            self.counts.swaps += len(swaps)
            for op in swaps:
                ours, queried = expected[op.pool.pool_id]
                actual = paid[op.pool.pool_id]
                if not ours == queried == actual[1] or actual[0] != op.amount:
                    self.counts.mismatches.append(
                        f"swap {op}: ours {ours} query {queried} paid {actual}"
                    )
            self._count(ops)
            await self.poll()

    def _count(self, ops: list[BalancerOp]) -> None:
        c = self.counts
        for op in ops:
            c.joins += op.kind == "join"
            c.exits += op.kind == "exit"
            c.fees += op.kind == "fee"

    async def reorg(self, depth: int) -> None:
        tip = int(self.w3.eth.block_number)
        fork = tip - depth
        ops = self.traffic.build_block(fork)
        txs = self.traffic.numbered(ops, fork)
        reorg(self.w3, depth, [(tx, 0) for tx in txs], floor=self.follower.start_block or 0)
        self._count(ops)
        self.counts.reverted_blocks += depth
        await self.poll()

    async def rollback(self, depth: int) -> None:
        rollback(self.w3, depth, floor=self.follower.start_block or 0)
        self.counts.reverted_blocks += depth
        await self.poll()

    async def poll(self) -> None:
        await self.follower.poll_once()
        frames, self.frames[:] = list(self.frames), []
        for payload in frames:
            settled = self.pipeline.feed_frame(payload)
            if settled is not None:
                await asyncio.to_thread(self.check, settled)

    def check(self, point: Settled) -> None:
        c = self.counts
        c.settles += 1
        assert point.trustworthy, self.engine.sync_status
        for pool in self.world.pools:
            state = self.engine.coins.state(self.index[pool.pool_id])
            assert state is not None
            balances = self.world.balances(pool, point.block)
            fee = self.world.swap_fee(pool, point.block)
            held = (state.balances, state.params.swap_fee)  # type: ignore[union-attr]
            if held != (balances, fee):
                c.mismatches.append(
                    f"block {point.block} {pool.version} {held} != {(balances, fee)}"
                )
            c.checks += 1


async def test_arena_and_quotes_equal_the_vault_through_reorgs(clean_world: BalancerWorld) -> None:
    proof = BalancerProof(clean_world, seed=14)
    for round_ in range(15):
        await proof.blocks(9)
        if round_ % 3 == 2:
            await proof.rollback(1 + round_ % 2)
        else:
            await proof.reorg(1 + (round_ // 3) % 3)
    await proof.blocks(10)
    execute_block(proof.w3, [])  # a block boundary: pools stale after a join/exit are read
    await proof.poll()
    c = proof.counts
    print(c, proof.follower.stats)  # kept by pytest on failure: the run's numbers
    assert c.mismatches == []
    assert c.swaps >= 200 and c.joins + c.exits >= 60 and c.fees >= 10
    assert c.reverted_blocks >= 15 and c.settles == c.checks // len(clean_world.pools)
    assert {p.version for p in clean_world.pools} == {"v1", "v2"}
    assert proof.follower.stats.reorgs == 10 and proof.follower.stats.reverts == 5
    stale = samples_by_label(
        proof.engine.metrics.registry, "arena_pools_marked_stale_total", "reason"
    )
    assert stale.get("balancer_join_exit_protocol_fees", 0) > 0
    assert proof.rpc_sync.resyncs == 1 and proof.rpc_sync.hydrations > 0
    # No pool is left stale: a first-generation pool marked after a join/exit was read
    # again at the next block boundary.
    assert all(proof.engine.status[i] == PoolStatus.LIVE for i in proof.index.values())
