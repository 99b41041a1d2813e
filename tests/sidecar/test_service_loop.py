"""`arena run`'s service in-process against a real Unix socket producer and a real
nats-server: the whitelist snapshot asked for at start, and one event loop whose tasks,
threads and file descriptors are all given back when the service stops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest

from arena.pipeline import Pipeline, open_pipeline
from arena.whitelist_changes import boundary_hook
from exex_bridge.producers.broadcast import FrameBroadcastServer, StreamSequencer
from exex_bridge.whitelist import snapshot_request_subject
from exex_bridge.whitelist_feed import WhitelistFeed
from pathfinder.opportunity import OPPORTUNITY_DECODER
from pathfinder.sinks import NatsSink, opportunities_subject
from sidecar.cli import build_parser
from sidecar.commands.common import MetricsServer
from sidecar.commands.run import LiveRunner, pipeline_config
from sidecar.config_file import load_settings
from sidecar.pathfinder_outputs import PathfinderOutputs
from sidecar.settings import ArenaSettings
from tests.arena.replay_scenario import standard_scenario
from tests.nats_server import NatsServer
from tests.pathfinder.test_sinks import sample

DEADLINE = 60.0
CHAIN = "ethereum"
DROPPED = "0x" + "e1" * 20  # a pool of the whitelist file the NATS snapshot leaves out


def _settings(tmp_path: Path, nats_url: str, wait: float) -> ArenaSettings:
    whitelist, initial = standard_scenario().write_inputs(tmp_path)
    args = [
        "run",
        "--socket",
        str(tmp_path / "exex.sock"),
        "--whitelist",
        str(whitelist),
        "--initial-state",
        str(initial),
        "--spill-depth",
        "0",
        "--nats",
        nats_url,
        "--whitelist-nats",
        nats_url,
        "--whitelist-snapshot-wait",
        str(wait),
        "--metrics-port",
        "0",
    ]
    return load_settings(build_parser().parse_args(args), environ={})


@dataclass
class _Service:
    pipeline: Pipeline
    runner: LiveRunner
    outputs: PathfinderOutputs
    server: FrameBroadcastServer
    metrics: MetricsServer


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run until `condition` holds (checked after every turn of the loop)."""
    async with asyncio.timeout(DEADLINE):
        while not condition():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def _service(settings: ArenaSettings) -> AsyncIterator[_Service]:
    """What `arena run` builds, run on this test's loop; stopped (and awaited) on exit."""
    async with FrameBroadcastServer(settings.socket.path) as server:
        with open_pipeline(pipeline_config(settings)) as pipeline:
            outputs = PathfinderOutputs.open(pipeline.engine, settings.pathfinder, on_loop=True)
            pipeline.subscribe_settled(outputs.on_settled)
            feed_url = settings.whitelist_feed.nats_url
            assert feed_url is not None
            feed = WhitelistFeed(feed_url, CHAIN)
            pipeline.subscribe_block_start(boundary_hook(pipeline.engine, pipeline.assembler, feed))
            runner = LiveRunner(pipeline, settings, feed, outputs)
            registry = pipeline.metrics.registry
            metrics = MetricsServer.start(registry, "127.0.0.1", 0, probes=runner)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            try:
                async with asyncio.timeout(DEADLINE):
                    await server.wait_for_clients(1)
                    yield _Service(pipeline, runner, outputs, server, metrics)
                    stop.set()
                    await task
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                metrics.stop()
                outputs.close()


def _snapshot(tmp_path: Path) -> bytes:
    document = json.loads((tmp_path / "whitelist.json").read_text())
    document["pools"] = [p for p in document["pools"] if p["address"] != DROPPED]
    return json.dumps(document).encode()


async def _responder(url: str, snapshot: bytes) -> nats.aio.client.Client:
    """The whitelist publisher: answers a snapshot request with the `.full` document."""
    nc = await nats.connect(url)

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await nc.publish(f"whitelist.pools.{CHAIN}.full", snapshot)

    await nc.subscribe(snapshot_request_subject(CHAIN), cb=answer)
    await nc.flush()
    return nc


def _snapshots(pipeline: Pipeline, outcome: str) -> float | None:
    return pipeline.metrics.registry.get_sample_value(
        "arena_service_whitelist_snapshots_total", {"outcome": outcome}
    )


async def test_a_snapshot_answered_at_start_seeds_the_whitelist(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = _settings(tmp_path, nats_server.url, wait=DEADLINE)
    responder = await _responder(nats_server.url, _snapshot(tmp_path))
    try:
        async with _service(settings) as service:
            engine = service.pipeline.engine
            dropped = bytes.fromhex(DROPPED[2:])
            assert dropped in engine.registry.lookup  # the file's whitelist, until a block
            assert _snapshots(service.pipeline, "received") == 1
            await service.server.publish_many(StreamSequencer().block(101, []))
            await _until(lambda: engine.tip_block == 101)
            assert dropped not in engine.registry.lookup  # the snapshot replaced it
            assert len(engine.registry.lookup) == 5
    finally:
        await responder.close()
    assert _snapshots(service.pipeline, "timed_out") == 0
    said = [r.getMessage() for r in caplog.records if "whitelist snapshot" in r.getMessage()]
    assert said == [f"whitelist snapshot received on whitelist.pools.{CHAIN}.full"]


async def test_without_a_snapshot_the_arena_says_so_once_and_runs(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(tmp_path, nats_server.url, wait=0.3)
    async with _service(settings) as service:
        engine = service.pipeline.engine
        assert _snapshots(service.pipeline, "timed_out") == 1
        await service.server.publish_many(StreamSequencer().block(101, []))
        await _until(lambda: engine.tip_block == 101)
        assert bytes.fromhex(DROPPED[2:]) in engine.registry.lookup  # the file's whitelist
    assert _snapshots(service.pipeline, "received") == 0
    (warning,) = [r for r in caplog.records if "no whitelist snapshot" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage() == (
        f"no whitelist snapshot on whitelist.pools.{CHAIN}.full within 0.3s of asking on "
        f"whitelist.snapshot.request.{CHAIN}: starting with the whitelist file (6 pools)"
    )


def _resources() -> tuple[int, frozenset[str], int]:
    tasks = len(asyncio.all_tasks())
    threads = frozenset(f"{t.name}:{t.ident}" for t in threading.enumerate())
    return tasks, threads, len(os.listdir("/proc/self/fd"))


async def _one_run(nats_url: str, tmp_path: Path, before: frozenset[str]) -> None:
    nc = await nats.connect(nats_url)
    received: asyncio.Queue[nats.aio.msg.Msg] = asyncio.Queue()
    await nc.subscribe(opportunities_subject(CHAIN), cb=received.put)
    await nc.flush()
    settings = _settings(tmp_path, nats_url, wait=0.2)
    try:
        async with _service(settings) as service:
            engine = service.pipeline.engine
            await service.server.publish_many(StreamSequencer().block(101, []))
            await _until(lambda: engine.tip_block == 101)
            (sink,) = [s for s in service.outputs.sinks if isinstance(s, NatsSink)]
            sink(sample(3))  # the arena's call: it enqueues; the loop's task publishes
            got = [await asyncio.wait_for(received.get(), DEADLINE) for _ in range(3)]
            assert [OPPORTUNITY_DECODER.decode(m.data) for m in got] == sample(3)
            # The only thread the service added is the HTTP server's: no second loop.
            threads = {t.name for t in threading.enumerate()}
            added = threads - {name.rsplit(":", 1)[0] for name in before}
            assert added == {f"http:{service.metrics.server.port}"}, added
    finally:
        await nc.close()


async def test_stopping_the_service_gives_back_every_task_thread_and_descriptor(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """The first run warms what lives as long as the process (the loop's resolver
    threads, imports); the second must leave tasks, threads and descriptors as it found
    them. A leak, however small, shows in every run."""
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()
    await _one_run(nats_server.url, first, _resources()[1])
    before = _resources()
    await _one_run(nats_server.url, second, before[1])
    after = _resources()
    assert after == before


async def test_a_stop_while_waiting_for_the_snapshot_ends_the_wait_and_every_task(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    tasks_before = len(asyncio.all_tasks())
    asked = asyncio.Event()
    watcher = await nats.connect(nats_server.url)

    async def on_request(msg: nats.aio.msg.Msg) -> None:
        asked.set()

    await watcher.subscribe(snapshot_request_subject(CHAIN), cb=on_request)
    await watcher.flush()
    settings = _settings(tmp_path, nats_server.url, wait=3600.0)
    try:
        with open_pipeline(pipeline_config(settings)) as pipeline:
            feed_url = settings.whitelist_feed.nats_url
            assert feed_url is not None
            runner = LiveRunner(pipeline, settings, WhitelistFeed(feed_url, CHAIN))
            stop = asyncio.Event()
            run = asyncio.create_task(runner.run(stop))
            await asyncio.wait_for(asked.wait(), DEADLINE)  # it is waiting for the answer
            stop.set()
            await asyncio.wait_for(run, DEADLINE)  # not the hour the wait allows
            assert _snapshots(pipeline, "received") == _snapshots(pipeline, "timed_out") == 0
    finally:
        await watcher.close()
    assert len(asyncio.all_tasks()) == tasks_before
