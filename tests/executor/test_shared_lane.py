"""The shared nonce lane on a real nats-server with JetStream: compare-and-set under
contention, and what happens when NATS goes away."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from executor.chain import ChainClient
from executor.keys import SigningKey
from executor.lane_sender import LaneSender, SendStatus
from executor.metrics import ExecutionMetrics
from executor.nats_link import NatsLink
from executor.nonce_lane import LocalLane
from executor.shared_lane import FallbackLane, LaneUnavailableError, SharedLane, lane_key
from executor.transaction import UnsignedTransaction
from tests.nats_server import NatsServer

KEY = lane_key(31337, b"\x11" * 20)
TRANSFER = UnsignedTransaction(
    chain_id=31337,
    nonce=0,
    max_priority_fee_per_gas=1,
    max_fee_per_gas=2,
    gas=21_000,
    to=b"\x11" * 20,
)


@pytest.fixture
async def jetstream() -> AsyncIterator[NatsServer]:
    async with NatsServer(jetstream=True) as server:
        yield server


def _open(url: str, owner: str, pending: int = 0, lease_s: float = 30.0) -> SharedLane:
    return SharedLane.open(
        NatsLink.connect(url), "lanes", KEY, lambda: pending, owner=owner, lease_s=lease_s
    )


def _reserve_many(lane: SharedLane, count: int, out: list[int]) -> None:
    for _ in range(count):
        nonce = lane.reserve()
        out.append(nonce)
        lane.confirm(nonce)


async def test_two_connections_reserving_at_once_get_unique_contiguous_nonces(
    jetstream: NatsServer,
) -> None:
    lanes = [await asyncio.to_thread(_open, jetstream.url, f"p{i}", 7) for i in range(2)]
    got: list[list[int]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(target=_reserve_many, args=(lanes[i % 2], 40, got[i])) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join, 120)
    every = sorted(n for part in got for n in part)
    assert every == list(range(7, 7 + 160))
    assert sum(lane.races for lane in lanes) > 0, "the threads never raced: no CAS exercised"
    for lane in lanes:
        lane.close()


async def test_a_released_nonce_goes_to_the_other_process(jetstream: NatsServer) -> None:
    first = await asyncio.to_thread(_open, jetstream.url, "a")
    second = await asyncio.to_thread(_open, jetstream.url, "b")
    held = [await asyncio.to_thread(first.reserve) for _ in range(3)]
    await asyncio.to_thread(first.release, held[1])
    assert await asyncio.to_thread(second.reserve) == held[1]
    first.close()
    second.close()


async def test_without_nats_the_lane_refuses_unless_a_fallback_is_configured(
    jetstream: NatsServer, tmp_path: Path
) -> None:
    shared = await asyncio.to_thread(_open, jetstream.url, "a", 4)
    local = LocalLane(tmp_path / "lane.json", lambda: 4, owner="a")
    fallback = FallbackLane(shared, local)
    assert await asyncio.to_thread(shared.reserve) == 4
    await jetstream.stop()
    with pytest.raises(LaneUnavailableError):
        await asyncio.to_thread(shared.reserve)
    registry = CollectorRegistry()
    sender = LaneSender(
        ChainClient("http://127.0.0.1:9"),
        SigningKey(b"\x01" * 32),
        shared,
        ExecutionMetrics(registry),
    )
    refused = await asyncio.to_thread(sender.send, TRANSFER)
    assert refused.status is SendStatus.REFUSED and refused.kind == "lane_unavailable"
    assert refused.signed is None  # nothing signed, nothing sent
    counted = registry.get_sample_value(
        "arena_executor_lane_errors_total", {"kind": "lane_unavailable"}
    )
    assert counted == 1
    local_nonce = await asyncio.to_thread(fallback.reserve)
    assert local_nonce == 4 and fallback.fallbacks == 1
    await asyncio.to_thread(fallback.release, local_nonce)
    assert local.state.next == 4

    # NATS back (same port, same store): the shared lane resumes where it was
    await jetstream.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    while True:
        try:
            resumed = await asyncio.to_thread(shared.reserve)
            break
        except LaneUnavailableError:
            assert loop.time() < deadline, "the shared lane never came back"
            await asyncio.sleep(0.1)
    assert resumed == 5  # 4 is still leased to the reservation made before the outage
    shared.close()
