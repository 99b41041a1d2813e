"""Several arenas on one relayed stream: each under its own durable name reads every frame
and reaches the state of a straight replay; neither takes frames from the other."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats

from exex_bridge.framing import frame
from exex_bridge.producers.broadcast import FrameBroadcastServer
from exex_bridge.relay_stream import stream_name
from tests.arena.replay_scenario import whitelist_document
from tests.nats_server import NatsServer
from tests.relay.long_stream import long_stream
from tests.relay.processes import ArenaProcess, scrape_until, straight_replay

CHAIN = "shared"
DURABLES = ("strategy-a", "strategy-b")


async def test_two_durable_consumers_each_read_the_whole_stream(tmp_path: Path) -> None:
    stream = long_stream(6_000)
    frames = stream.frames
    whitelist, initial = tmp_path / "whitelist.json", tmp_path / "initial.json"
    whitelist.write_text(json.dumps(whitelist_document()))
    initial.write_text(json.dumps(stream.initial_state))
    sock = tmp_path / "exex.sock"
    outs = {name: tmp_path / f"{name}.json" for name in DURABLES}
    async with (
        asyncio.timeout(240),
        NatsServer(jetstream_dir=tmp_path / "js") as server,
        FrameBroadcastServer(sock, client_queue=len(frames) + 1) as producer,
    ):
        relay = await ArenaProcess(
            "relay",
            "--socket",
            sock,
            "--nats",
            server.url,
            "--chain",
            CHAIN,
            "--metrics-port",
            "0",
        ).start()
        relay_url = await relay.metrics_url()
        await producer.wait_for_clients(1)
        await producer.publish_many(frame(f) for f in frames)
        await scrape_until(relay_url, "arena_relay_frames_acked_total", len(frames))
        arenas = {
            name: await ArenaProcess(
                "run",
                "--jetstream",
                server.url,
                "--chain",
                CHAIN,
                "--durable",
                name,
                "--whitelist",
                whitelist,
                "--initial-state",
                initial,
                "--state-out",
                outs[name],
                "--spill-path",
                tmp_path / f"spill-{name}",
                "--metrics-port",
                "0",
            ).start()
            for name in DURABLES
        }
        samples = {}
        for name, arena in arenas.items():
            await arena.wait_for(f"as {name}")
            samples[name] = await scrape_until(
                await arena.metrics_url(), "arena_state_tip_block", stream.final_state["block"]
            )
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            for name in DURABLES:
                info = await js.consumer_info(stream_name(CHAIN), name)
                assert info.num_pending == 0  # each durable went through the whole stream
        finally:
            await nc.close()
        for arena in arenas.values():
            assert await arena.stop() == 0, arena.log
            assert "Traceback" not in arena.log
        assert await relay.stop() == 0, relay.log
    straight = straight_replay(frames, whitelist, initial, tmp_path / "straight.json")
    for name in DURABLES:
        assert json.loads(outs[name].read_bytes()) == straight == stream.final_state
        assert samples[name]["arena_state_synced"] == 1
        assert samples[name].get("arena_stream_seq_gaps_total", 0) == 0
