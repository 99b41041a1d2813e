"""The socket's counters reach Prometheus: a real Unix socket producer sends an oversize
frame and cuts a frame in half; `arena_socket_*` count the connects, disconnects, both
faults and the reconnect backoff, as the running service exports them."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from arena.pipeline import Pipeline, open_pipeline
from exex_bridge.producers.broadcast import FrameBroadcastServer
from sidecar.cli import build_parser
from sidecar.commands.run import LiveRunner, pipeline_config
from sidecar.config_file import load_settings
from tests.arena.replay_scenario import standard_scenario

DEADLINE = 60.0
MAX_FRAME = 1024


def _value(pipeline: Pipeline, name: str) -> float:
    value = pipeline.metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


async def _until_metric(pipeline: Pipeline, name: str, wanted: float) -> None:
    """Until the exported `name` reaches `wanted` (copied from the source each heartbeat)."""
    async with asyncio.timeout(DEADLINE):
        while _value(pipeline, name) < wanted:
            await asyncio.sleep(0.01)


async def test_connects_disconnects_oversize_and_cut_frames_are_exported(tmp_path: Path) -> None:
    whitelist, initial = standard_scenario().write_inputs(tmp_path)
    sock = tmp_path / "exex.sock"
    args = [
        "run",
        "--socket",
        str(sock),
        "--whitelist",
        str(whitelist),
        "--initial-state",
        str(initial),
        "--spill-depth",
        "0",
        "--max-frame-size",
        str(MAX_FRAME),
        "--loop-stall",
        "0.2",  # a heartbeat every 0.05 s
    ]
    settings = load_settings(build_parser().parse_args(args), environ={})
    with open_pipeline(pipeline_config(settings)) as pipeline:
        runner = LiveRunner(pipeline, settings)
        stop = asyncio.Event()
        run = asyncio.create_task(runner.run(stop))
        try:
            async with FrameBroadcastServer(sock) as server:
                await _until_metric(pipeline, "arena_socket_connected", 1)
                # A length prefix above the limit: the arena drops the connection unread.
                await server.publish(struct.pack("<I", MAX_FRAME + 1) + b"\0" * 16)
                await _until_metric(pipeline, "arena_socket_oversize_frames_total", 1)
                await _until_metric(pipeline, "arena_socket_connects_total", 2)  # reconnected
                await server.wait_for_accepted(2)
                await server.wait_for_clients(1)
                # Half a frame, then the producer goes away.
                await server.publish(struct.pack("<I", 100) + b"\1" * 10)
                await server.flush()
            # The oversize frame's connection ended inside that frame too: 2.
            await _until_metric(pipeline, "arena_socket_cut_frames_total", 2)
            await _until_metric(pipeline, "arena_socket_connect_failures_total", 1)
            await _until_metric(pipeline, "arena_socket_backoff_attempts", 2)
            assert _value(pipeline, "arena_socket_connected") == 0
            async with FrameBroadcastServer(sock) as server:
                await _until_metric(pipeline, "arena_socket_connects_total", 3)
                await _until_metric(pipeline, "arena_socket_connected", 1)
                # stopped while the producer is still there: the stop is no loss (the
                # producer going away first would be one, and the last copy counts it)
                stop.set()
                await asyncio.wait_for(run, DEADLINE)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        assert _value(pipeline, "arena_socket_disconnects_total") == 2  # the stop is no loss
        assert _value(pipeline, "arena_socket_oversize_frames_total") == 1
        assert _value(pipeline, "arena_socket_cut_frames_total") == 2
        stats = runner.source.stats
        assert _value(pipeline, "arena_socket_connect_failures_total") == stats.connect_failures
