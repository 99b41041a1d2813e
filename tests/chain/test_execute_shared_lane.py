"""Two `arena execute --live` processes, one sending key, one NATS server: the
opportunities reach them as a queue group, the nonces come from the shared lane in
JetStream KV. Every transaction either one journals as sent has its own nonce, and the
nonces the chain saw are exactly the ones journaled — none skipped, none twice."""

from __future__ import annotations

import asyncio

import nats
import pytest

from devchain import TrafficGenerator
from devchain.executor_world import arena_opportunities, automine
from executor.journal import AttemptStatus, JournalEntry, read_journal
from pathfinder.opportunity import OPPORTUNITY_ENCODER
from pathfinder.sinks import opportunities_subject
from tests.chain.executor_fixtures import ExecutorWorld, executor_world
from tests.chain.test_execute_command import cli, finish, read_until, start
from tests.nats_server import NatsServer

__all__ = ["executor_world"]

pytestmark = pytest.mark.chain

ROUNDS = 300
WANTED_SENT = 100
ROUND_DEADLINE_S = 120.0


def _args(world: ExecutorWorld, url: str, journal: str) -> list[str]:
    return cli(
        "execute",
        "--rpc",
        world.chain.node.url,
        "--executor",
        world.executor,
        "--key-file",
        world.key_file,
        "--whitelist",
        world.whitelist,
        "--journal",
        world.tmp / journal,
        "--opportunities",
        url,
        "--live",
        "--executor-nats",
        url,
        "--max-reverted",
        "1000",
        "--receipt-timeout",
        "30",
    )


def _journals(world: ExecutorWorld) -> list[list[JournalEntry]]:
    out = []
    for name in ("a.jsonl", "b.jsonl"):
        path = world.tmp / name
        out.append(read_journal(path) if path.exists() else [])
    return out


def _settled(entries: list[JournalEntry]) -> int:
    """Opportunities with a final journal entry (a sent one waits for its outcome)."""
    return sum(e.status is not AttemptStatus.SENT for e in entries)


async def test_two_live_executors_share_one_key_through_nats(executor_world: ExecutorWorld) -> None:
    world = executor_world
    w3 = world.chain.w3
    first_nonce = world.client.nonce(world.key.address, "pending")
    generator = TrafficGenerator(w3, world.chain.deployment, seed=21)
    async with NatsServer(jetstream=True) as server:
        processes = [await start(_args(world, server.url, n)) for n in ("a.jsonl", "b.jsonl")]
        seen: list[list[str]] = [[], []]
        subject = opportunities_subject("ethereum")
        for process, lines in zip(processes, seen, strict=True):
            await read_until(process, "subscribed to " + subject, lines)
        client = await nats.connect(server.url)
        published = 0
        loop = asyncio.get_running_loop()
        try:
            for _ in range(ROUNDS):
                await asyncio.to_thread(generator.run, 1)
                found = await asyncio.to_thread(arena_opportunities, w3, world.pools)
                with automine(w3):
                    for opportunity in found:
                        await client.publish(subject, OPPORTUNITY_ENCODER.encode(opportunity))
                    await client.flush()
                    published += len(found)
                    deadline = loop.time() + ROUND_DEADLINE_S
                    while sum(_settled(j) for j in _journals(world)) < published:
                        assert loop.time() < deadline, "the executors did not settle the round"
                        await asyncio.sleep(0.05)
                sent = [e for j in _journals(world) for e in j if e.status is AttemptStatus.SENT]
                if len(sent) >= WANTED_SENT and all(
                    any(e.status is AttemptStatus.SENT for e in j) for j in _journals(world)
                ):
                    break
        finally:
            await client.close()
            outputs = [await finish(p, lines) for p, lines in zip(processes, seen, strict=True)]
    journals = _journals(world)
    sent = [e for j in journals for e in j if e.status is AttemptStatus.SENT]
    assert len(sent) >= WANTED_SENT, outputs[0][1][-3000:]
    assert all(any(e.status is AttemptStatus.SENT for e in j) for j in journals)
    nonces = sorted(e.nonce for e in sent if e.nonce is not None)
    assert nonces == list(range(first_nonce, first_nonce + len(sent)))
    assert world.client.nonce(world.key.address, "latest") == first_nonce + len(sent)
    outcomes = {AttemptStatus.INCLUDED, AttemptStatus.REVERTED}
    mined = [e for j in journals for e in j if e.status in outcomes]
    assert sorted(e.nonce for e in mined if e.nonce is not None) == nonces
