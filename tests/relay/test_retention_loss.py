"""Messages the stream's retention removed before a resumed arena read them: the consumer
sees the stream sequence jump, logs the removed range once, counts it (the service's
`arena_jetstream_messages_missing_total`), and the arena goes unsynced on the gap —
never a silent loss (real nats-server with JetStream, a real relay on a Unix socket)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from prometheus_client import CollectorRegistry

from arena.pipeline import PipelineConfig, open_pipeline
from arena.sync_state import LossCause, SyncState
from exex_bridge.codec import encode_message
from exex_bridge.framing import frame
from exex_bridge.jetstream_source import JetStreamSource
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.relay_stream import stream_name
from sidecar.service_metrics import ServiceMetrics
from tests.arena.replay_scenario import standard_scenario
from tests.nats_server import NatsServer
from tests.relay.relay_world import last_sequence, read_stream, running_relay, until

CHAIN = "kept"


@contextlib.asynccontextmanager
async def relayed(tmp_path: Path, frames: list[bytes]) -> AsyncIterator[NatsServer]:
    """A nats-server whose stream holds `frames`, relayed from a real socket."""
    sock = tmp_path / "s.sock"
    async with (
        asyncio.timeout(120),
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock) as producer,
        running_relay(server.url, sock, CHAIN) as relay,
    ):
        await producer.wait_for_clients(1)
        await producer.publish_many(frame(f) for f in frames)
        await until(lambda: relay.value("arena_relay_frames_acked_total") == len(frames))
        yield server


async def test_messages_removed_before_a_resumed_read_are_counted_logged_and_unsync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = standard_scenario()
    whitelist, initial = scenario.write_inputs(tmp_path)
    frames = [encode_message(msg) for msg in scenario.builder.messages]
    async with relayed(tmp_path, frames) as server:
        contents = await read_stream(server.url, CHAIN)
        last = await last_sequence(server.url, CHAIN)
        assert last >= 6, "the scenario must span several messages"
        stopped_at, kept_from = 2, last - 2  # the arena stops after message 2

        with open_pipeline(PipelineConfig(whitelist=whitelist, initial_state=initial)) as pipeline:
            before = JetStreamSource(server.url, CHAIN, "arena", stop_seq=stopped_at)
            async for payload in before.frames():
                pipeline.feed_frame(payload)
            assert pipeline.engine.sync_status.state is SyncState.SYNCED
            # while it is down, the retention removes every message before `kept_from`
            nc = await nats.connect(server.url)
            try:
                await nc.jetstream().purge_stream(stream_name(CHAIN), seq=kept_from)
            finally:
                await nc.close()
            caplog.clear()
            resumed = JetStreamSource(
                server.url, CHAIN, "arena", start_seq=stopped_at + 1, stop_seq=last
            )
            got = []
            with caplog.at_level(logging.ERROR, logger="exex_bridge.jetstream_source"):
                async for payload in resumed.frames():
                    got.append(payload)
                    pipeline.feed_frame(payload)
            loss = pipeline.engine.sync_status.loss
            assert loss is not None and loss.cause is LossCause.SEQ_GAP

    removed = kept_from - stopped_at - 1
    assert resumed.missing == removed
    assert got == contents.payloads[contents.first_frame_of(kept_from) :]
    lines = [r.getMessage() for r in caplog.records if "removed before" in r.getMessage()]
    assert lines == [
        f"stream {stream_name(CHAIN)} messages {stopped_at + 1}..{kept_from - 1} were removed "
        "before this consumer read them (retention by age or bytes, or a purge): their "
        "frames are lost (the arena sees a stream_seq gap)"
    ]
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    metrics.observe_jetstream(resumed)
    metrics.observe_jetstream(resumed)  # observed twice: counted once
    assert registry.get_sample_value("arena_jetstream_messages_missing_total") == removed
    assert registry.get_sample_value("arena_jetstream_stream_sequence") == last


async def test_a_consumer_without_a_start_counts_nothing_for_a_stream_that_begins_later(
    tmp_path: Path,
) -> None:
    """From the stream's first message (no checkpoint), whatever the retention removed
    before is not this consumer's loss: nothing was expected there."""
    frames = [encode_message(msg) for msg in standard_scenario().builder.messages]
    async with relayed(tmp_path, frames) as server:
        last = await last_sequence(server.url, CHAIN)
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().purge_stream(stream_name(CHAIN), seq=3)
        finally:
            await nc.close()
        source = JetStreamSource(server.url, CHAIN, "fresh", stop_seq=last)
        sequences = [source.position async for _ in source.frames()]
    assert sequences[0] == 3 and sequences[-1] == last
    assert source.missing == 0
