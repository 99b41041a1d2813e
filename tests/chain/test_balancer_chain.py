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
import os
import random
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest
from web3 import Web3

from arena.balancer_hydration import (
    BalancerExclusion,
    BalancerPoolSnapshot,
    hydrate_balancer_pools,
)
from arena.block_assembler import Settled
from arena.coin_pools import CoinPoolState, WeightedParams
from arena.engine import ArenaEngine
from arena.pipeline import Pipeline
from arena.pool_status import PoolStatus
from arena.resync import pools_to_hydrate, resync
from arena.rpc_sync import RpcSync
from arena.summary import samples_by_label
from devchain import AnvilNode, execute_block, reorg, rollback, rpc_call
from devchain.balancer_traffic import BalancerOp, BalancerTraffic
from devchain.balancer_world import (
    BalancerPool,
    BalancerWorld,
    create_rate_provider_pool,
    deploy_balancer_world,
    vault_swaps,
)
from devchain.errors import RpcError
from exex_bridge import messages as m
from exex_bridge.codec import decode_message
from exex_bridge.producers.chain_follower import ChainFollower
from exex_bridge.recording import open_recording
from pathfinder.balancer_weighted import quote_out, weighted_math_of
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
    stale_checks: int = 0  # pools stale at a settled point (excluded, not compared)
    stale_drifts: int = 0  # of those, pools whose held balances differed from the Vault's
    stale_quotes: int = 0  # swaps on pools stale before their block (not quoted)
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

    async def start(self) -> None:
        """One empty block: the arena hydrates every pool at the block before it."""
        execute_block(self.w3, [])
        await self.poll()

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
            for op in swaps:
                if self.engine.status[self.index[op.pool.pool_id]] != PoolStatus.LIVE:
                    self.counts.stale_quotes += 1  # never quoted: re-read at the next block
                    continue
                self.counts.swaps += 1
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
            index = self.index[pool.pool_id]
            state = self.engine.coins.state(index)
            assert state is not None
            balances = self.world.balances(pool, point.block)
            fee = self.world.swap_fee(pool, point.block)
            held = (state.balances, state.params.swap_fee)  # type: ignore[union-attr]
            if self.engine.status[index] == PoolStatus.STALE:
                c.stale_checks += 1
                c.stale_drifts += held != (balances, fee)
            elif held != (balances, fee):
                c.mismatches.append(
                    f"block {point.block} {pool.version} {held} != {(balances, fee)}"
                )
            c.checks += 1


async def test_arena_and_quotes_equal_the_vault_through_reorgs(clean_world: BalancerWorld) -> None:
    proof = BalancerProof(clean_world, seed=14)
    await proof.start()
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
    assert c.stale_drifts == 0  # without protocol fees the deltas are exact even for v1
    assert c.stale_quotes < c.swaps // 5
    assert c.swaps >= 200 and c.joins + c.exits >= 60 and c.fees >= 10
    assert c.reverted_blocks >= 15 and c.settles == c.checks // len(clean_world.pools)
    assert {p.version for p in clean_world.pools} == {"v1", "v2", "v3"}
    assert proof.follower.stats.reorgs == 10 and proof.follower.stats.reverts == 5
    stale = samples_by_label(
        proof.engine.metrics.registry, "arena_pools_marked_stale_total", "reason"
    )
    assert stale.get("balancer_join_exit_protocol_fees", 0) > 0
    assert proof.rpc_sync.resyncs == 1 and proof.rpc_sync.hydrations > 0
    # No pool is left stale: a first-generation pool marked after a join/exit was read
    # again at the next block boundary.
    assert all(proof.engine.status[i] == PoolStatus.LIVE for i in proof.index.values())


async def test_protocol_fees_taken_at_joins_and_exits_make_first_generation_pools_stale(
    clean_world: BalancerWorld,
) -> None:
    """With a protocol swap fee, a first-generation pool's join/exit takes fees from its
    balances that the stream does not carry: the arena marks it stale (never quoted,
    never compared) and reads it again at the next block boundary."""
    clean_world.set_protocol_swap_fee(5 * 10**17)
    proof = BalancerProof(clean_world, seed=5)
    await proof.start()
    await proof.blocks(40)
    execute_block(proof.w3, [])
    await proof.poll()
    c = proof.counts
    print(c)  # kept by pytest on failure
    assert c.mismatches == []  # every LIVE pool equals the Vault at every settled point
    assert c.stale_drifts > 0  # the drift is real, and only ever seen on stale pools
    assert c.swaps >= 40 and c.joins + c.exits >= 10
    assert all(proof.engine.status[i] == PoolStatus.LIVE for i in proof.index.values())


def test_the_ratio_limits_refuse_what_the_vault_refuses(world: BalancerWorld) -> None:
    """31 % of the balance in is refused by our math and by BalancerQueries alike."""
    for pool in world.pools:
        balances = world.balances(pool)
        amount = balances[0] * 31 // 100
        proof_state = quote_state(world, pool)
        with pytest.raises(MathDomainError) as ours:
            quote_out(
                proof_state,
                bytes.fromhex(pool.tokens[0][2:]),
                bytes.fromhex(pool.tokens[1][2:]),
                amount,
            )
        assert ours.value.reason == "BAL#304"
        with pytest.raises(RpcError, match="BAL#304"):
            world.query_swap(pool, 0, 1, amount)
        # just inside the limit both quote the same
        inside = balances[0] * 29 // 100
        assert quote_out(
            proof_state,
            bytes.fromhex(pool.tokens[0][2:]),
            bytes.fromhex(pool.tokens[1][2:]),
            inside,
        ) == world.query_swap(pool, 0, 1, inside)


def quote_state(world: BalancerWorld, pool: BalancerPool) -> CoinPoolState:
    """The pool as the arena's RPC hydration reads it."""
    (found,) = hydrate_balancer_pools(world.w3, [pool.pool_id], int(world.w3.eth.block_number))
    assert isinstance(found, BalancerPoolSnapshot)
    return found.state


def test_pools_with_a_rate_provider_are_excluded_and_counted(clean_world: BalancerWorld) -> None:
    """Scaling factors that move with `getRate()` are not in the stream: such a pool is
    tracked but never hydrated, quoted or retried; the exclusion is counted by reason."""
    rated = create_rate_provider_pool(clean_world)
    plain = clean_world.pools[2]
    block = int(clean_world.w3.eth.block_number)
    not_a_pool = bytes.fromhex(clean_world.tokens["BDAI"][2:]) + bytes(12)
    excluded, hydrated, wrong = hydrate_balancer_pools(
        clean_world.w3, [rated.pool_id, plain.pool_id, not_a_pool], block
    )
    assert isinstance(excluded, BalancerExclusion) and excluded.reason == "balancer_rate_providers"
    assert isinstance(hydrated, BalancerPoolSnapshot)
    # a wrong whitelist entry is excluded, it does not keep the others from syncing
    assert isinstance(wrong, BalancerExclusion) and wrong.reason == "balancer_not_weighted"
    engine = ArenaEngine(capacity=16)
    entries = {p.key: p for p in clean_world.whitelisted()}
    rated_entry = msgspec.structs.replace(
        entries[plain.pool_id], key=rated.pool_id, address=bytes.fromhex(rated.address[2:])
    )
    engine.add_pools([rated_entry, entries[plain.pool_id]])
    resync(engine, clean_world.w3, block)
    assert engine.status[0] == PoolStatus.UNKNOWN and engine.coins.state(0) is None
    assert engine.status[1] == PoolStatus.LIVE
    excluded_counts = samples_by_label(
        engine.metrics.registry, "arena_coin_pools_excluded_total", "reason"
    )
    assert excluded_counts == {"balancer_rate_providers": 1.0}
    assert pools_to_hydrate(engine) == []  # not retried at every block


async def test_arena_follow_serves_the_vaults_events_with_balancer_vault(
    clean_world: BalancerWorld, tmp_path: Path
) -> None:
    """`arena follow --balancer-vault`: the anvil Vault's swaps and joins reach the wire,
    keyed by pool id, with the stream's rules (a recording holds every frame)."""
    w3 = clean_world.w3
    whitelist = tmp_path / "balancer.json"
    whitelist.write_bytes(msgspec.json.encode(clean_world.whitelist_document()))
    record = tmp_path / "balancer.arec"
    start = int(w3.eth.block_number) + 1
    url = str(getattr(w3.provider, "endpoint_uri", ""))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar.cli",
        "follow",
        *("--rpc", url, "--socket", str(tmp_path / "b.sock"), "--whitelist", str(whitelist)),
        *("--from-block", str(start), "--poll-interval", "0.05", "--record", str(record)),
        *("--balancer-vault", clean_world.vault),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stderr is not None
    traffic = BalancerTraffic(clean_world, seed=3)
    ops: list[BalancerOp] = []
    try:
        await _line(process.stderr, rf"\({len(clean_world.pools)} pools\)")
        for _ in range(3):
            block_ops = traffic.build_block()
            execute_block(w3, traffic.numbered(block_ops))
            ops += block_ops
        await _line(process.stderr, rf"block .*{start + 2}: \d+ updates")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    updates = [
        msg.event
        for msg in (decode_message(p) for p in open_recording(record).frames())
        if isinstance(msg, m.PoolUpdate)
    ]
    kinds = {"swap": m.BalancerSwap, "join": m.BalancerLiquidity, "exit": m.BalancerLiquidity}
    expected = [(op.pool.pool_id, kinds.get(op.kind, m.BalancerFeeUpdate)) for op in ops]
    assert [(u.pool_id.value, type(u.update)) for u in updates] == expected
    assert all(u.protocol is m.Protocol.BALANCER_V2_WEIGHTED for u in updates)


async def _line(stream: asyncio.StreamReader, pattern: str) -> str:
    """The first stderr line matching `pattern` (readiness from output, no sleeps)."""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 60)).decode()
        if not line:
            raise AssertionError(f"arena follow exited before printing {pattern!r}")
        if re.search(pattern, line):
            return line


def test_given_out_quotes_equal_balancer_queries(world: BalancerWorld) -> None:
    """`WeightedPoolMath.amount_in` (the pool's given-out swap) against the Vault."""
    rng = random.Random(8)
    checked = 0
    for pool in world.pools:
        state = quote_state(world, pool)
        assert isinstance(state.params, WeightedParams)
        math = weighted_math_of(state.params)
        for _ in range(10):
            i, j = rng.sample(range(len(pool.tokens)), 2)
            amount_out = max(1, int(state.balances[j] * rng.uniform(1e-9, 0.29)))
            assert math.amount_in(state.balances, i, j, amount_out) == world.query_swap(
                pool, i, j, amount_out, given_out=True
            )
            checked += 1
        with pytest.raises(RpcError, match="BAL#305"):
            world.query_swap(pool, 0, 1, state.balances[1] * 31 // 100, given_out=True)
    assert checked == 10 * len(world.pools)
