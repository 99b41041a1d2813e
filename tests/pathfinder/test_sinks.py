"""Opportunity sinks: JSONL round trip, callback, and NATS against a real nats-server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import nats
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from exex_bridge.backoff import Backoff
from exex_bridge.connection_state import ConnectionState
from pathfinder.opportunity import OPPORTUNITY_DECODER, Opportunity
from pathfinder.sinks import (
    CallbackSink,
    JsonlSink,
    NatsSink,
    SinkError,
    opportunities_subject,
)
from tests.nats_server import NatsServer

U256 = st.integers(0, (1 << 256) - 1)
HEX20 = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
WAIT = 20.0  # seconds; a bound for waits on real I/O, never a sleep


@st.composite
def opportunities(draw: st.DrawFn) -> Opportunity:
    hops = draw(st.integers(2, 3))
    amount_in = draw(U256)
    profit = draw(st.integers(0, 1 << 200))
    gas_cost = draw(st.integers(0, 1 << 80))
    return Opportunity(
        chain=draw(st.sampled_from(["ethereum", "base"])),
        block=draw(st.integers(0, (1 << 64) - 1)),
        base_fee_per_gas=draw(U256),
        after_reorg=draw(st.booleans()),
        pools=tuple(draw(st.lists(HEX20, min_size=hops, max_size=hops))),
        zero_for_one=tuple(draw(st.lists(st.booleans(), min_size=hops, max_size=hops))),
        tokens=tuple(draw(st.lists(HEX20, min_size=hops + 1, max_size=hops + 1))),
        amount_in=amount_in,
        expected_out=amount_in + profit,
        profit=profit,
        gas_units=draw(st.integers(21_000, 1_000_000)),
        gas_cost=gas_cost,
        net_profit=profit - gas_cost,
        screened_profit=draw(st.floats(0, 1e70, allow_nan=False)),
        screened_amount_in=draw(st.floats(0, 1e70, allow_nan=False)),
    )


def sample(n: int, block: int = 1) -> list[Opportunity]:
    # fmt: off
    return [
        Opportunity(
            chain="ethereum", block=block, base_fee_per_gas=7 * 10**9, after_reorg=False,
            pools=("0x" + "11" * 20, "0x" + "22" * 20), zero_for_one=(True, False),
            tokens=("0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "aa" * 20),
            amount_in=10**30 + i, expected_out=10**30 + 2 * i + 1, profit=i + 1,
            gas_units=141_000, gas_cost=0, net_profit=i + 1,
            screened_profit=float(i) + 0.5, screened_amount_in=1e30,
        )
        for i in range(n)
    ]
    # fmt: on


# -- JSONL ------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(batches=st.lists(st.lists(opportunities(), max_size=4), max_size=4))
def test_jsonl_round_trip(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[Opportunity]]
) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "out.jsonl"
    written = 0
    with JsonlSink(path) as sink:
        for batch in batches:
            sink(batch)
            written += len(batch)
            assert path.read_bytes().count(b"\n") == written  # flushed per batch
    lines = path.read_bytes().splitlines()
    decoded = [OPPORTUNITY_DECODER.decode(line) for line in lines]
    assert decoded == [o for batch in batches for o in batch]


def test_jsonl_appends_and_keeps_big_ints_exact(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    big = msgspec.structs.replace(sample(1)[0], amount_in=(1 << 256) - 1)
    with JsonlSink(path) as sink:
        sink([big])
    with JsonlSink(path) as sink:  # a second run appends, never truncates
        sink(sample(2))
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3
    assert f'"amount_in":{(1 << 256) - 1},'.encode() in lines[0]
    assert OPPORTUNITY_DECODER.decode(lines[0]).amount_in == (1 << 256) - 1


def test_jsonl_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "out.jsonl"
    with pytest.raises(SinkError, match="cannot open for appending") as info:
        JsonlSink(missing)
    assert info.value.target == str(missing)
    with pytest.raises(SinkError):
        JsonlSink(tmp_path)  # a directory


def test_callback_sink_passes_batches_and_has_a_name() -> None:
    seen: list[Sequence[Opportunity]] = []
    sink = CallbackSink(seen.append)
    batch = sample(3)
    sink(batch)
    sink([])
    assert seen == [batch, []]
    assert sink.name.startswith("callback:")
    assert CallbackSink(seen.append, name="executor").name == "executor"


# -- NATS -------------------------------------------------------------------------------
async def subscribe(url: str, subject: str) -> tuple[NatsClient, asyncio.Queue[Msg]]:
    nc = await nats.connect(url, allow_reconnect=False)
    received: asyncio.Queue[Msg] = asyncio.Queue()
    await nc.subscribe(subject, cb=received.put)
    await nc.flush()  # the server has the subscription before anything is published
    return nc, received


async def receive(
    received: asyncio.Queue[Msg],
    n: int,
    sink: NatsSink | None = None,
    server: NatsServer | None = None,
) -> list[Opportunity]:
    out: list[Opportunity] = []
    for _ in range(n):
        try:
            msg = await asyncio.wait_for(received.get(), WAIT)
        except TimeoutError:
            detail = "" if sink is None else describe(sink)
            log = b"".join(server.output).decode() if server is not None else ""
            raise AssertionError(f"{len(out)} of {n} received; {detail}\n{log}") from None
        out.append(OPPORTUNITY_DECODER.decode(msg.data))
    return out


def describe(sink: NatsSink) -> str:
    return (
        f"{sink.name}: state {sink.state}, published {sink.published}, "
        f"dropped {sink.dropped}, errors {sink.connection_errors}"
    )


def assert_state(sink: NatsSink, state: ConnectionState) -> None:
    assert sink.state is state


async def wait_until(sink: NatsSink, predicate: object) -> None:
    ok = await asyncio.to_thread(sink.wait_until, predicate, WAIT)  # type: ignore[arg-type]
    assert ok, describe(sink)


async def test_nats_sink_publishes_each_opportunity_as_json(nats_server: NatsServer) -> None:
    subject = opportunities_subject("testchain")
    nc, received = await subscribe(nats_server.url, subject)
    registry = CollectorRegistry()
    sink = NatsSink(nats_server.url, "testchain", registry=registry)
    assert sink.name == f"nats:{subject}"
    try:
        batches = [sample(3, block=1), sample(2, block=2)]
        batches[0][0] = msgspec.structs.replace(batches[0][0], amount_in=(1 << 256) - 1)
        for batch in batches:
            sink(batch)  # the first call starts the sink
        got = await receive(received, 5)
        assert got == batches[0] + batches[1]
        assert received.empty()
    finally:
        await sink.aclose()
        await nc.close()
    assert sink.published == 5
    assert sink.dropped == 0
    assert sink.state is ConnectionState.CLOSED
    labels = {"sink": sink.name}
    assert registry.get_sample_value("arena_path_sink_published_total", labels) == 5
    assert registry.get_sample_value("arena_path_sink_dropped_total", labels) == 0
    assert registry.get_sample_value("arena_path_sink_connection_errors_total", labels) == 0
    assert registry.get_sample_value("arena_path_sink_connected", labels) == 0


async def test_nats_sink_close_flushes_what_is_queued(nats_server: NatsServer) -> None:
    nc, received = await subscribe(nats_server.url, opportunities_subject("ethereum"))
    sink = NatsSink(nats_server.url)
    sink.start()
    await wait_until(sink, lambda s: s.state is ConnectionState.CONNECTED)
    batch = sample(500)
    sink(batch)
    await sink.aclose()  # returns only once all 500 went out and were flushed
    assert sink.published == 500
    assert await receive(received, 500) == batch
    await nc.close()
    sink(sample(1))  # after close: counted, never raised
    assert sink.dropped == 1


async def test_nats_server_going_away_never_blocks_the_arena(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    sink = NatsSink(nats_server.url, queue_size=8, backoff=Backoff(initial=0.05, maximum=0.2))
    sink.start()
    await wait_until(sink, lambda s: s.state is ConnectionState.CONNECTED)
    await nats_server.stop()
    await wait_until(sink, lambda s: s.state is ConnectionState.DISCONNECTED)
    await wait_until(sink, lambda s: s.connection_errors >= 2)  # reconnects keep failing

    started = time.perf_counter()
    for block in range(100):
        sink(sample(10, block))  # the arena's thread: must return at once
    elapsed = time.perf_counter() - started
    assert sink.dropped == 1000 - 8  # queue bound: 8 kept for the reconnection
    assert sink.published == 0
    assert elapsed < 5.0  # generous on a loaded CI box; a blocking sink would hang
    warnings = [
        r
        for r in caplog.records
        if r.name == "pathfinder.sinks"
        and r.levelno == logging.WARNING
        and "connection error" in r.getMessage()
    ]
    assert len(warnings) == 1  # logged once per outage, counted every time

    # The server comes back on the same port: the queued 8 go out, then new ones flow.
    await nats_server.start()
    await wait_until(sink, lambda s: s.state is ConnectionState.CONNECTED and s.published == 8)
    nc, received = await subscribe(nats_server.url, sink.subject)
    fresh = sample(3, block=1000)
    sink(fresh)
    # Some of the 8 may still have been on their way to the server when we subscribed.
    got: list[Opportunity] = []
    while len(got) < 3:
        [o] = await receive(received, 1, sink, nats_server)
        if o.block != 1000:
            assert o.block < 100  # one of the queued 8, delivered after reconnecting
            continue
        got.append(o)
    assert got == fresh
    await nc.close()
    await sink.aclose()


async def test_nats_sink_close_without_server_returns_within_timeout(
    nats_server: NatsServer,
) -> None:
    url = nats_server.url
    await nats_server.stop()
    sink = NatsSink(url, backoff=Backoff(initial=0.05, maximum=0.2))
    sink(sample(4))  # queued while the sink cannot connect
    await wait_until(sink, lambda s: s.connection_errors >= 1)
    assert_state(sink, ConnectionState.CONNECTING)
    started = time.perf_counter()
    await sink.aclose(timeout=2.0)
    assert time.perf_counter() - started < 10.0
    assert_state(sink, ConnectionState.CLOSED)
    assert sink.dropped == 4
    assert sink.published == 0


async def test_on_the_callers_loop_a_lost_server_never_stalls_it(nats_server: NatsServer) -> None:
    """The worker is a task of this loop (no thread): while the server is gone, batches
    are queued up to the bound and the rest dropped and counted, each call returning at
    once; the server back, the queue goes out; `aclose()` awaits the task."""
    registry = CollectorRegistry()
    sink = NatsSink(
        nats_server.url, queue_size=8, backoff=Backoff(initial=0.05, maximum=0.2), registry=registry
    )
    threads = threading.active_count()
    await sink.astart()
    assert threading.active_count() == threads

    async def until(predicate: Callable[[NatsSink], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate(sink):
                await asyncio.sleep(0.01)

    await until(lambda s: s.state is ConnectionState.CONNECTED)
    await nats_server.stop()
    await until(lambda s: s.state is ConnectionState.DISCONNECTED)
    for block in range(100):
        sink(sample(10, block))  # never awaits: the loop's other tasks are not held up
    assert sink.dropped == 1000 - 8
    assert registry.get_sample_value("arena_path_sink_dropped_total", {"sink": sink.name}) == 992
    await nats_server.start()
    await until(lambda s: s.published == 8)
    await sink.aclose()
    assert sink.state is ConnectionState.CLOSED
    sink(sample(1))
    assert sink.dropped == 993
