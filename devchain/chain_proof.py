"""The end-to-end proof on a dev chain: the arena equals the contracts after every block.

anvil (real Uniswap contracts, seeded traffic, `anvil_reorg` with replacement traffic,
`anvil_rollback`) → `ChainFollower` → Unix socket (`FrameBroadcastServer`) →
`SocketSource` → `Pipeline` (block assembler + engine), with `RpcSync` hydrating the
arena at the block before the first one it sees and pools that join mid-stream.

Steps run in lockstep: change the chain, let the follower poll once, wait for the
settled points that poll produces, and compare every pool (slot0, liquidity, reserves,
every initialized tick) with independent eth_calls at each settled block
(`devchain.chain_check`). Used by tests/chain/test_end_to_end.py, scripts/soak.py and the
sample recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Self, final

from arena.block_assembler import Settled
from arena.engine import ArenaEngine
from arena.pipeline import Pipeline
from arena.rpc_sync import RpcSync
from arena.summary import LatencyStats, samples_by_label
from devchain import TrafficGenerator, TxRequest, execute_block, reorg, rollback
from devchain.chain_check import Mismatch, compare_with_node
from devchain.view import ChainView
from exex_bridge.codec import decode_message
from exex_bridge.errors import CodecError
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.producers.chain_follower import ChainFollower, EpilogueScope, PollReport
from exex_bridge.socket_source import Disconnection, SocketSource
from exex_bridge.whitelist import WhitelistedPool

log = logging.getLogger(__name__)

StepKind = Literal["blocks", "reorg", "rollback"]
_KEPT_MISMATCHES: Final = 50


@dataclass(frozen=True, kw_only=True)
class ProofConfig:
    """`blocks` traffic blocks, with `reorgs` reorgs (depths 1..max_depth in turn) and
    `rollbacks` rollbacks spread evenly among them. `check_every` N compares the state at
    every Nth settled point (and always after a reorg and at the end)."""

    blocks: int = 200
    reorgs: int = 20
    rollbacks: int = 4
    max_depth: int = 5
    seed: int = 1
    batch_probability: float = 0.15  # mine 2..3 blocks before one poll
    check_every: int = 1
    check_ticks: bool = True
    settle_timeout: float = 60.0
    epilogue_scope: EpilogueScope = "producer"


@dataclass(frozen=True, slots=True)
class Step:
    """`count`: blocks to mine, or the depth; `then_mine`: traffic blocks mined after a
    reorg or rollback before the follower polls."""

    kind: StepKind
    count: int
    then_mine: int = 0


def plan_steps(config: ProofConfig) -> list[Step]:
    """A seeded schedule; depths never reach below the first block the follower sends."""
    rng = random.Random(config.seed * 7919 + 17)
    depths = [1 + i % config.max_depth for i in range(config.reorgs)]
    specials: list[tuple[StepKind, int]] = [("reorg", d) for d in depths]
    specials += [("rollback", 1 + i % min(3, config.max_depth)) for i in range(config.rollbacks)]
    rng.shuffle(specials)
    gap = max(1, config.blocks // (len(specials) + 1))
    steps: list[Step] = []
    height, budget = 0, config.blocks
    for kind, wanted in [*specials, ("blocks", 0)]:
        chunk = min(gap, budget) if kind != "blocks" else budget
        budget -= chunk
        while chunk > 0:
            n = min(chunk, rng.randint(2, 3)) if rng.random() < config.batch_probability else 1
            steps.append(Step("blocks", n))
            chunk -= n
            height += n
        depth = min(wanted, height)
        if kind == "blocks" or depth < 1:
            continue
        then_mine = 1 if rng.random() < 0.3 else 0
        steps.append(Step(kind, depth, then_mine))
        height += then_mine - (depth if kind == "rollback" else 0)
    return steps


def change_chain(generator: TrafficGenerator, step: Step) -> None:
    """Apply one step to the node (blocking RPC).

    The first block of a reorg's replacement, and the first block mined after a rollback,
    always hold transactions: an empty block replacing an empty one with the same parent,
    timestamp and base fee (anvil's base fee bottoms out at 7 wei) has the same hash, and
    the "reorg" would change nothing.
    """
    w3 = generator.w3
    if step.kind == "reorg":
        tip = int(w3.eth.block_number)
        view = generator.load_view(tip - step.count)
        replacement = [(tx, 0) for tx in _busy_block(generator, view)]
        replacement += [
            (tx, offset)
            for offset in range(1, step.count)
            for tx in generator.build_block(generator.rng, view)
        ]
        reorg(w3, step.count, replacement, floor=generator.deployment.block)
    elif step.kind == "rollback":
        rollback(w3, step.count, floor=generator.deployment.block)
    if step.kind != "blocks" and step.then_mine:
        execute_block(w3, _busy_block(generator, generator.load_view()))
        generator.run(step.then_mine - 1)
    elif step.kind == "blocks":
        generator.run(step.count)


def _busy_block(generator: TrafficGenerator, view: ChainView) -> list[TxRequest]:
    while True:
        txs = generator.build_block(generator.rng, view)
        if txs:
            return txs


@dataclass(slots=True)
class ProofResult:
    steps: int = 0
    blocks: int = 0
    reorgs: Counter[int] = field(default_factory=Counter)
    rollbacks: Counter[int] = field(default_factory=Counter)
    updates: int = 0
    frames: int = 0
    epilogues: int = 0
    settles: int = 0
    checks: int = 0
    mismatch_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    untrusted_settles: int = 0
    decode_errors: int = 0
    disconnects: int = 0
    divergences: int = 0
    stale_pools: int = 0
    resyncs: int = 0
    tip: int | None = None
    apply: LatencyStats | None = None
    revert: LatencyStats | None = None
    wall_seconds: float = 0.0

    @property
    def reverted_blocks(self) -> int:
        return sum(d * n for d, n in (self.reorgs + self.rollbacks).items())

    @property
    def ok(self) -> bool:
        losses = self.untrusted_settles + self.decode_errors + self.disconnects
        return not (self.mismatch_count or self.divergences or self.stale_pools or losses)

    def table(self) -> str:
        def depths(c: Counter[int]) -> str:
            return ", ".join(f"{d}:{n}" for d, n in sorted(c.items())) or "-"

        def lat(s: LatencyStats | None) -> str:
            return "-" if s is None or not s.count else f"p50 {s.p50_us} µs, p99 {s.p99_us} µs"

        rows = [
            ("blocks published", str(self.blocks)),
            ("reorgs by depth", f"{sum(self.reorgs.values())} ({depths(self.reorgs)})"),
            ("rollbacks by depth", f"{sum(self.rollbacks.values())} ({depths(self.rollbacks)})"),
            ("blocks reverted", str(self.reverted_blocks)),
            ("pool updates", str(self.updates)),
            ("epilogue finals", str(self.epilogues)),
            ("frames", str(self.frames)),
            ("settled points", str(self.settles)),
            ("state checks (eth_call)", str(self.checks)),
            ("mismatches", str(self.mismatch_count)),
            ("divergences", str(self.divergences)),
            ("stale pools at end", str(self.stale_pools)),
            ("untrusted settles", str(self.untrusted_settles)),
            ("apply per block", lat(self.apply)),
            ("revert per block", lat(self.revert)),
            ("wall time", f"{self.wall_seconds:.1f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"| {k.ljust(width)} | {v} |" for k, v in rows)


@final
class ChainProof:
    """`async with ChainProof(generator, pools, socket) as proof: await proof.step(s)`."""

    def __init__(
        self,
        generator: TrafficGenerator,
        pools: Iterable[WhitelistedPool],
        socket_path: str | Path,
        config: ProofConfig | None = None,
        *,
        on_frame: Callable[[bytes], None] | None = None,
        v4_state_view: str | None = None,
    ) -> None:
        """`v4_state_view`: V4 pools are compared through this StateView (and hydrated
        through their PoolManager's `extsload`, so the two reads check each other)."""
        self.generator = generator
        self.v4_state_view = v4_state_view
        self.w3 = generator.w3
        self.config = config or ProofConfig()
        self.pools = tuple(pools)
        self.server = FrameBroadcastServer(socket_path)
        self.follower = ChainFollower(
            self.w3,
            self.pools,
            self.server,
            start_block=self.w3.eth.block_number + 1,
            epilogue_scope=self.config.epilogue_scope,
            on_frame=on_frame,
        )
        self.engine = ArenaEngine(capacity=max(16, 2 * len(self.pools)))
        self.engine.add_pools(self.pools)
        self.pipeline = Pipeline(self.engine)
        self.rpc_sync = RpcSync(self.engine, self.w3)
        self.pipeline.subscribe_block_start(self.rpc_sync.before_block)
        self._unchecked: list[Settled] = []  # settled by the frame being fed
        self.pipeline.subscribe_settled(self._unchecked.append)
        self.source = SocketSource(socket_path, on_disconnect=self._on_disconnect)
        self.result = ProofResult()
        # The consumer waits at each settled point until it was checked: the state must
        # not move on before the comparison at that block.
        self._settled: asyncio.Queue[tuple[Settled, asyncio.Future[None]]] = asyncio.Queue()
        self._consumer: asyncio.Task[None] | None = None
        self._started = time.perf_counter()

    async def __aenter__(self) -> Self:
        await self.server.start()
        self._consumer = asyncio.create_task(self._consume())
        await self.server.wait_for_clients(1)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.source.close()
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        await self.server.close()

    def add_pools(self, pools: Iterable[WhitelistedPool]) -> None:
        """Whitelist pools between steps (a block boundary on both sides)."""
        added = tuple(pools)
        self.follower.add_pools(added)
        self.engine.add_pools(added)

    async def run(self, steps: Iterable[Step]) -> ProofResult:
        for step in steps:
            await self.step(step)
        return self.finish()

    async def step(self, step: Step) -> list[Settled]:
        """Change the chain, poll once, wait for and check every resulting settled point."""
        await asyncio.to_thread(self._change_chain, step)
        report = await self.follower.poll_once()
        self.result.steps += 1
        if step.kind != "blocks" and report.reorg is None:
            raise RuntimeError(f"{step} produced no reorg envelope: {report}")
        settled = []
        for i in range(report.settle_points):
            point, done = await asyncio.wait_for(self._settled.get(), self.config.settle_timeout)
            last = i == report.settle_points - 1
            try:
                await self._check(point, report, force=last and report.reorg is not None)
            finally:
                done.set_result(None)
            settled.append(point)
        self._count(step, report)
        return settled

    def finish(self) -> ProofResult:
        r = self.result
        stats = self.follower.stats
        r.blocks, r.updates, r.frames, r.epilogues = (
            stats.blocks,
            stats.updates,
            stats.frames,
            stats.epilogues,
        )
        registry = self.engine.metrics.registry
        r.divergences = sum(
            samples_by_label(registry, "arena_reorg_divergences_total", "kind").values()
        )
        r.stale_pools = self.engine.stale_count()
        r.resyncs = self.rpc_sync.resyncs
        r.tip = self.engine.tip_block
        r.decode_errors = self.source.stats.decode_errors + self.pipeline.decode_errors
        r.apply = self.pipeline.apply_latency.stats()
        r.revert = self.pipeline.revert_latency.stats()
        r.wall_seconds = time.perf_counter() - self._started
        return r

    # -- internals ----------------------------------------------------------------------
    def _change_chain(self, step: Step) -> None:
        change_chain(self.generator, step)

    def _count(self, step: Step, report: PollReport) -> None:
        if report.reorg is None:
            return
        target = self.result.rollbacks if step.kind == "rollback" else self.result.reorgs
        target[report.reorg.depth] += 1

    async def _check(self, point: Settled, report: PollReport, *, force: bool) -> None:
        self.result.settles += 1
        if not point.trustworthy:
            self.result.untrusted_settles += 1
            log.error("settled at block %d untrusted: %s", point.block, self.engine.sync_status)
        if not force and self.result.settles % self.config.check_every:
            return
        found = await asyncio.to_thread(
            compare_with_node,
            self.engine,
            self.w3,
            point.block,
            ticks=self.config.check_ticks,
            v4_state_view=self.v4_state_view,
        )
        self.result.checks += 1
        if found:
            self.result.mismatch_count += len(found)
            room = _KEPT_MISMATCHES - len(self.result.mismatches)
            self.result.mismatches += found[: max(0, room)]
            log.error(
                "%d mismatches at block %d after %s; first: %s",
                len(found),
                point.block,
                report,
                found[0].line(),
            )

    async def _consume(self) -> None:
        async with contextlib.aclosing(self.source.frames()) as frames:
            async for payload in frames:
                try:
                    msg = decode_message(payload)
                except CodecError as exc:
                    self.result.decode_errors += 1
                    self.pipeline.assembler.on_decode_error(exc.stream_seq)
                    continue
                self.pipeline.feed(msg)
                while self._unchecked:
                    done = asyncio.get_running_loop().create_future()
                    self._settled.put_nowait((self._unchecked.pop(0), done))
                    await done

    def _on_disconnect(self, event: Disconnection) -> None:
        self.result.disconnects += 1
        self.pipeline.on_connection_lost()
